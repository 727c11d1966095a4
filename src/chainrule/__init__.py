"""chainrule: backpropagation on computational graphs, one gate at a time.

A function is a circuit of gates; each gate knows its local gradient; backward multiplies the
upstream gradient by it, gate by gate in reverse topological order, adding where values fork.
"""

from . import data, diagnostics, distributed, nn, optim, train
from .check import GradcheckError, gradcheck, numerical_grad, relative_error
from .draw import Diagram, draw
from .engine import GateError, GateTypeError, GateValueError, enable_grad, is_grad_enabled, no_grad
from .explain import Explanation, explain
from .explore import Explorer, explore
from .functional import grad, hessian, jacobian, value_and_grad, vjp
from .gate import Gate
from .io import load, save
from .ops import (
    absolute,
    broadcast_to,
    clip,
    concatenate,
    dot,
    exp,
    expand_dims,
    linear_combination,
    log,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    minimum,
    relu,
    reshape,
    sigmoid,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    swapaxes,
    tanh,
    transpose,
    where,
)
from .ops.reduce import max, mean, min, sum  # noqa: A004 - NumPy's names, as in np.sum
from .stage import Staged, StageError, stage
from .tensor import Tensor, arange, ones, randn, tensor, zeros
from .trace import Circuit, trace
from .value import Value

abs = absolute  # noqa: A001 - cr.abs like np.abs

__version__ = "0.1.0"

__all__ = [
    "data",
    "diagnostics",
    "distributed",
    "load",
    "nn",
    "optim",
    "train",
    "save",
    "StageError",
    "Staged",
    "stage",
    "Diagram",
    "Explanation",
    "draw",
    "explain",
    "Explorer",
    "explore",
    "Circuit",
    "GradcheckError",
    "grad",
    "gradcheck",
    "hessian",
    "jacobian",
    "numerical_grad",
    "relative_error",
    "trace",
    "value_and_grad",
    "vjp",
    "linear_combination",
    "Gate",
    "GateError",
    "GateTypeError",
    "GateValueError",
    "Tensor",
    "Value",
    "abs",
    "absolute",
    "arange",
    "broadcast_to",
    "clip",
    "concatenate",
    "dot",
    "enable_grad",
    "exp",
    "expand_dims",
    "is_grad_enabled",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "no_grad",
    "ones",
    "randn",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sum",
    "swapaxes",
    "tanh",
    "tensor",
    "transpose",
    "where",
    "zeros",
]
