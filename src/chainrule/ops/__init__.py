"""The built-in gates, grouped by kind, and the functions that apply them."""

from .arithmetic import Add, Div, Mul, Neg, Pow, PowConst, Reciprocal, Scale, Sub, Translate
from .broadcast import BroadcastTo, apply_elementwise, broadcast_to
from .elementwise import (
    Abs,
    Clip,
    Exp,
    Log,
    Maximum,
    Minimum,
    Relu,
    Sigmoid,
    Sqrt,
    Tanh,
    Where,
    absolute,
    clip,
    exp,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    tanh,
    where,
)
from .linalg import MatMul, dot, matmul
from .reduce import LogSumExp, Max, Mean, Min, Sum, logsumexp
from .scalar import LinearCombination, linear_combination
from .shape import (
    Concatenate,
    GetItem,
    Reshape,
    ScatterAdd,
    Stack,
    Transpose,
    concatenate,
    expand_dims,
    getitem,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    transpose,
)
from .softmax import LogSoftmax, Softmax, log_softmax, softmax

__all__ = [
    "Abs", "Add", "BroadcastTo", "Clip", "Concatenate", "Div", "Exp", "GetItem", "Log",
    "LinearCombination", "linear_combination",
    "LogSoftmax", "LogSumExp", "MatMul", "Max", "Maximum", "Mean", "Min", "Minimum", "Mul", "Neg",
    "Pow", "PowConst", "Reciprocal", "Relu", "Reshape", "Scale", "ScatterAdd", "Sigmoid",
    "Softmax", "Sqrt", "Stack", "Sub", "Sum", "Tanh", "Translate", "Transpose", "Where",
    "absolute", "apply_elementwise", "broadcast_to", "clip", "concatenate", "dot", "exp",
    "expand_dims", "getitem", "log", "log_softmax", "logsumexp", "matmul", "maximum", "minimum",
    "relu", "reshape", "sigmoid", "softmax", "split", "sqrt", "squeeze", "stack", "swapaxes",
    "tanh", "transpose", "where",
]
