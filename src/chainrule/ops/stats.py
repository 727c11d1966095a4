"""Products, running sums and spreads with NumPy's names: ``prod``, ``cumsum``, ``cumprod`` as
gates, ``var`` and ``std`` (with ``ddof``) composed of mean, subtraction and sum.

``cumsum``'s backward is a cumulative sum running the other way (a gate of the same kind), so it
differentiates again. ``prod`` and ``cumprod`` send back ``grad * (product of the others)``; with
no zero among the inputs that is ``out / x``. ``prod`` also handles zeros (the product of the
others from products to the left and to the right); ``cumprod`` refuses an input with a zero
rather than dividing by it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._util import keepdims_shape, normalize_axis, raw
from .elementwise import sqrt


def _shape(x: Any) -> tuple:
    return np.shape(raw(x))


class CumSum(Gate):
    """Running sum along ``axis`` (from the end when ``reverse``); the gradient is the running
    sum of the gradient in the other direction."""

    name = "cumsum"
    symbol = "cumsum"

    @staticmethod
    def forward_code(site):
        if site.options["reverse"]:
            return site.format("np.flip(np.cumsum(np.flip({0}, {axis}), axis={axis}), {axis})")
        return site.format("np.cumsum({0}, axis={axis})")

    @staticmethod
    def forward(ctx, x, *, axis, reverse):
        if reverse:
            return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
        return np.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        options = ctx.options
        return (CumSum.apply(grad, axis=options["axis"], reverse=not options["reverse"]),)


class CumProd(Gate):
    """Running product along ``axis``: the gradient of x_i is the reversed running sum of
    grad * out, divided by x_i (an input containing 0 is refused)."""

    name = "cumprod"
    forward_code = "np.cumprod({0}, axis={axis})"

    @staticmethod
    def forward(ctx, x, *, axis):
        out = np.cumprod(x, axis=axis)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        if np.any(raw(x) == 0):
            raise GateError(
                "gate 'cumprod': the gradient at an input containing 0 is not supported (it "
                "would divide by 0)"
            )
        return (CumSum.apply(grad * out, axis=ctx.options["axis"], reverse=True) / x,)


class Prod(Gate):
    """Product over ``axis``: each element's gradient is the upstream gradient times the
    product of the other elements."""

    name = "prod"
    symbol = "Π"

    @staticmethod
    def forward_code(site):
        axis, keepdims = site.options["axis"], site.options["keepdims"]
        extra = "" if axis is None else f", axis={site.lit(axis)}"
        return site.format("np.prod({0}" + extra + (", keepdims=True" if keepdims else "") + ")")

    @staticmethod
    def forward(ctx, x, *, axis, keepdims):
        out = np.prod(x, axis=axis, keepdims=keepdims)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        axis = ctx.options["axis"]
        shape = keepdims_shape(_shape(x), axis)
        g, out = grad.reshape(shape), out.reshape(shape)
        if not np.any(raw(x) == 0):
            return (g * out / x,)
        if isinstance(x, Node):
            raise GateError(
                "gate 'prod': second derivatives at an input containing 0 are not supported"
            )
        return (g * _others(x, axis),)


def _others(x: np.ndarray, axis: tuple | None) -> np.ndarray:
    """For each element, the product of the other elements of its reduction (exact with
    zeros): products to the left times products to the right."""
    axes = tuple(range(x.ndim)) if axis is None else axis
    moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
    flat = moved.reshape(*moved.shape[: moved.ndim - len(axes)], -1)
    ones = np.ones((*flat.shape[:-1], 1), x.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.flip(
        np.cumprod(np.concatenate([ones, np.flip(flat, -1)[..., :-1]], axis=-1), axis=-1), -1
    )
    return np.moveaxis((left * right).reshape(moved.shape), tuple(range(-len(axes), 0)), axes)


def _axis_one(x: Any, axis: Any, name: str) -> tuple[Any, int]:
    """``x`` (flattened when ``axis`` is None, as NumPy does) and one normalized axis."""
    if axis is None:
        return x.reshape(-1), 0
    if not isinstance(axis, (int, np.integer)):
        raise GateError(f"gate '{name}': axis must be an int or None, got {axis!r}")
    return x, normalize_axis(axis, len(_shape(x)), name)[0]


def cumsum(x: Any, axis: Any = None) -> Any:
    """Running sum along ``axis`` (of the flattened array when None), as NumPy's ``cumsum``."""
    x, axis = _axis_one(x, axis, "cumsum")
    return CumSum.apply(x, axis=axis, reverse=False)


def cumprod(x: Any, axis: Any = None) -> Any:
    """Running product along ``axis`` (of the flattened array when None), as NumPy's
    ``cumprod``."""
    x, axis = _axis_one(x, axis, "cumprod")
    return CumProd.apply(x, axis=axis)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Product over ``axis`` (an int, a tuple or None for all), as NumPy's ``prod``."""
    axis = normalize_axis(axis, len(_shape(x)), "prod")
    return Prod.apply(x, axis=axis, keepdims=bool(keepdims))


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (NumPy's default 0; PyTorch's
    unbiased estimate is ddof=1): sum((x - mean)²) / (n - ddof)."""
    shape = _shape(x)
    axes = normalize_axis(axis, len(shape), "var")
    n = math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)
    if n - ddof <= 0:
        raise GateError(f"gate 'var': ddof={ddof} leaves no degrees of freedom for {n} element(s)")
    centered = x - x.mean(axis=axes, keepdims=True)
    return (centered * centered).sum(axis=axes, keepdims=keepdims) * (1.0 / (n - ddof))


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """Standard deviation: the square root of :func:`var`."""
    return sqrt(var(x, axis, ddof, keepdims))
