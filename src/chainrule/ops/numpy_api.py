"""NumPy's own functions on Tensors: ``np.exp(t)``, ``np.sum(t, axis=0)``, ``ndarray * t`` run
chainrule's gates (through ``Tensor.__array_ufunc__`` and ``__array_function__``), so a NumPy
user's code records a circuit. What has no gate is refused with a ``TypeError`` naming the NumPy
function, never computed silently on the raw data (which would cut the circuit).

Questions about an array that have no gradient (``np.shape``, ``np.argmax``, comparisons,
``np.isfinite``...) are answered from the data and return plain NumPy values.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from . import arithmetic as ar
from . import arrange, contract, elementwise, special, stats, trig
from .broadcast import broadcast_to
from .linalg import dot
from .pad import np_pad
from .reduce import max as rmax
from .reduce import mean, sum
from .reduce import min as rmin
from .shape import concatenate, expand_dims, reshape, split, squeeze, stack, swapaxes, transpose


def _operator(name: str) -> Callable[[Any, Any], Any]:
    """A binary ufunc as the operand's Python operator (``a * b`` or ``b.__rmul__(a)``): the
    same gates and constant folding as the operators."""

    def apply(a: Any, b: Any) -> Any:
        from ..engine import Node

        if isinstance(a, Node):
            return getattr(a, f"__{name}__")(b)
        return getattr(b, f"__r{name}__")(a)

    return apply


def _raw_ufunc(ufunc: np.ufunc) -> Callable[..., Any]:
    return lambda *inputs: ufunc(*[_raw(i) for i in inputs])


def _raw(value: Any) -> Any:
    from ..engine import Node

    return value.data if isinstance(value, Node) else value


UFUNCS: dict[np.ufunc, Callable[..., Any]] = {
    np.add: _operator("add"),
    np.subtract: _operator("sub"),
    np.multiply: _operator("mul"),
    np.true_divide: _operator("truediv"),
    np.power: _operator("pow"),
    np.matmul: _operator("matmul"),
    np.negative: ar.Neg.apply,
    np.positive: lambda x: x,
    np.absolute: elementwise.absolute,
    np.exp: elementwise.exp,
    np.log: elementwise.log,
    np.sqrt: elementwise.sqrt,
    np.tanh: elementwise.tanh,
    np.maximum: elementwise.maximum,
    np.minimum: elementwise.minimum,
    np.sin: trig.sin,
    np.cos: trig.cos,
    np.tan: trig.tan,
    np.arcsin: trig.arcsin,
    np.arccos: trig.arccos,
    np.arctan: trig.arctan,
    np.sinh: trig.sinh,
    np.cosh: trig.cosh,
    np.arcsinh: trig.arcsinh,
    np.arctanh: trig.arctanh,
    np.sign: special.sign,
    np.floor: special.floor,
    np.ceil: special.ceil,
    np.square: special.square,
    np.expm1: special.expm1,
    np.log1p: special.log1p,
    np.log2: special.log2,
    np.log10: special.log10,
    np.exp2: special.exp2,
    np.arctan2: special.arctan2,
    np.hypot: special.hypot,
    np.logaddexp: special.logaddexp,
}
"""Differentiable ufuncs and the chainrule function each one runs."""

NO_GRADIENT_UFUNCS = (
    np.less,
    np.less_equal,
    np.greater,
    np.greater_equal,
    np.equal,
    np.not_equal,
    np.isfinite,
    np.isnan,
    np.isinf,
    np.signbit,
    np.logical_and,
    np.logical_or,
    np.logical_not,
)
"""Ufuncs whose results carry no gradient (booleans): computed on the data."""

REDUCERS: dict[np.ufunc, Callable[..., Any]] = {
    np.add: sum,
    np.maximum: rmax,
    np.minimum: rmin,
    np.multiply: stats.prod,
}
"""``ufunc.reduce`` (``np.add.reduce(t, axis)``) as chainrule's reductions."""


def array_ufunc(ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """What ``Tensor.__array_ufunc__`` does: run the ufunc's gate, or refuse by name."""
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if kwargs.get("out") is not None:
        raise TypeError(
            f"{name}: out= cannot write into a Tensor (tensors in a circuit are immutable)"
        )
    extra = {k: v for k, v in kwargs.items() if k != "out"}
    if method == "__call__":
        if ufunc in NO_GRADIENT_UFUNCS and not extra:
            return _raw_ufunc(ufunc)(*inputs)
        if ufunc in UFUNCS and not extra:
            return UFUNCS[ufunc](*inputs)
    elif method == "reduce" and ufunc in REDUCERS and len(inputs) == 1:
        unknown = set(extra) - {"axis", "keepdims"}
        if not unknown:
            return REDUCERS[ufunc](inputs[0], extra.get("axis", 0), extra.get("keepdims", False))
    options = f" with {', '.join(sorted(extra))}" if extra else ""
    raise TypeError(
        f"{name}{options} has no chainrule gate for Tensors; use a chainrule function "
        "(cr.exp, cr.sum, ...) or np.asarray(t) for the plain data (outside the circuit)"
    )


def _linalg_norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    return contract.norm(x, ord, axis, keepdims)


FUNCTIONS: dict[Callable, Callable[..., Any]] = {
    np.sum: sum,
    np.mean: mean,
    np.max: rmax,
    np.amax: rmax,
    np.min: rmin,
    np.amin: rmin,
    np.prod: stats.prod,
    np.var: stats.var,
    np.std: stats.std,
    np.cumsum: stats.cumsum,
    np.cumprod: stats.cumprod,
    np.reshape: lambda a, newshape=None, order="C", shape=None: reshape(
        a, shape if shape is not None else newshape
    ),
    np.transpose: transpose,
    np.swapaxes: swapaxes,
    np.squeeze: squeeze,
    np.expand_dims: expand_dims,
    np.concatenate: concatenate,
    np.stack: stack,
    np.split: split,
    np.broadcast_to: broadcast_to,
    np.dot: dot,
    np.clip: lambda a, a_min=None, a_max=None: elementwise.clip(a, a_min, a_max),
    np.where: lambda condition, x, y: elementwise.where(_raw(condition), x, y),
    np.einsum: contract.einsum,
    np.tensordot: contract.tensordot,
    np.outer: contract.outer,
    np.diagonal: contract.diagonal,
    np.trace: contract.trace,
    np.linalg.norm: _linalg_norm,
    np.tril: arrange.tril,
    np.triu: arrange.triu,
    np.flip: arrange.flip,
    np.roll: arrange.roll,
    np.repeat: arrange.repeat,
    np.tile: arrange.tile,
    np.moveaxis: arrange.moveaxis,
    np.pad: np_pad,
}
"""NumPy functions with a differentiable chainrule counterpart (same argument names)."""

QUERIES = (
    np.shape,
    np.ndim,
    np.size,
    np.argmax,
    np.argmin,
    np.allclose,
    np.isclose,
    np.array_equal,
    np.any,
    np.all,
    np.count_nonzero,
    np.argsort,
    np.nonzero,
    np.array2string,
    np.array_repr,
    np.array_str,
    np.result_type,
    np.can_cast,
    np.zeros_like,
    np.ones_like,
    np.empty_like,
    np.full_like,
)
"""NumPy functions answered from the data (plain arrays): their results carry no gradient."""

_PLAIN = (str, int, float, bool, type(None))


def _at_default(value: Any, default: Any) -> bool:
    return value is default or (isinstance(value, _PLAIN) and value == default)


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """What ``Tensor.__array_function__`` does: run the chainrule counterpart, answer a query
    from the data, or refuse by name."""
    if func in QUERIES:
        return func(*[_raw(a) for a in args], **{k: _raw(v) for k, v in kwargs.items()})
    target = FUNCTIONS.get(func)
    module = getattr(func, "__module__", None) or "numpy"
    name = f"{module.replace('numpy', 'np', 1)}.{getattr(func, '__name__', func)}"
    if target is None:
        raise TypeError(
            f"{name} has no chainrule gate for Tensors; use a chainrule function or "
            "np.asarray(t) for the plain data (outside the circuit)"
        )
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values()):  # einsum
        extra = [k for k, v in kwargs.items() if v is not None and v is not False]
        if extra:
            raise TypeError(f"{name}: {', '.join(extra)}= is not supported for Tensors")
        return target(*args)
    bound = inspect.signature(func).bind(*args, **kwargs)
    values = {k: v for k, v in bound.arguments.items() if v is not np._NoValue}
    first, *rest = values
    accepted = inspect.signature(target).parameters
    keywords = {}
    for key in rest:
        value, param = values[key], params[key]
        if key in accepted and param.kind is not inspect.Parameter.VAR_KEYWORD:
            keywords[key] = value
        elif param.kind is inspect.Parameter.VAR_KEYWORD and value:
            raise TypeError(f"{name}: {', '.join(value)}= is not supported for Tensors")
        elif param.kind is not inspect.Parameter.VAR_KEYWORD and not _at_default(
            value, param.default
        ):
            raise TypeError(f"{name}: {key}= is not supported for Tensors")
    return target(values[first], **keywords)
