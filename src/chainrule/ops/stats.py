"""Products, running sums and spreads with NumPy's names: ``prod``, ``cumsum``, ``cumprod`` as
gates, ``var`` and ``std`` (with ``ddof``) composed of mean, subtraction and sum.

``cumsum``'s backward is a cumulative sum running the other way (a gate of the same kind), so it
differentiates again. ``prod`` and ``cumprod`` send back ``grad * (product of the others)``,
computed as products of x with each element in turn replaced by 1 (never ``out / x``, which
divides by zero), written with the same gates: exact at zeros, to every order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine import GateError
from ..gate import Gate
from ._util import keepdims_shape, normalize_axis, raw
from .arrange import SetDiagonal, Triangle
from .broadcast import broadcast_to
from .elementwise import sqrt
from .shape import expand_dims, swapaxes, transpose


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


def _each_replaced(x: Any) -> Any:
    """(..., n) -> (..., n, n): row i is x with its element i replaced by 1 (gates, so it
    differentiates). Products over a row leave element i out: how prod and cumprod find "the
    product of the others" exactly, zeros included."""
    n = _shape(x)[-1]
    return SetDiagonal.apply(broadcast_to(expand_dims(x, -2), (*_shape(x)[:-1], n, n)), value=1.0)


class CumProd(Gate):
    """Running product along the last axis. The gradient of x_i is the sum over j >= i of
    grad_j times the running product up to j without x_i (a running product of x with x_i
    replaced by 1): exact with zeros, at n² cost along the axis."""

    name = "cumprod"
    forward_code = "np.cumprod({0}, axis=-1)"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cumprod(x, axis=-1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        without = CumProd.apply(_each_replaced(x))  # [..., i, j]: prod_{k <= j, k != i} x_k
        upper = Triangle.apply(without, k=0, lower=False)  # the terms j >= i
        return ((upper * expand_dims(grad, -2)).sum(axis=-1),)


class Prod(Gate):
    """Product over the last axis: each element's gradient is the upstream gradient times the
    product of the other elements (exact with zeros)."""

    name = "prod"
    symbol = "Π"
    forward_code = "np.prod({0}, axis=-1)"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.prod(x, axis=-1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (expand_dims(grad, -1) * Prod.apply(_each_replaced(x)),)


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
    last = len(_shape(x)) - 1
    if axis == last:
        return CumProd.apply(x)
    return swapaxes(CumProd.apply(swapaxes(x, axis, last)), axis, last)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Product over ``axis`` (an int, a tuple or None for all), as NumPy's ``prod``: the
    reduced axes are moved last and flattened into one, which one gate multiplies out."""
    shape = _shape(x)
    axes = normalize_axis(axis, len(shape), "prod")
    axes = tuple(range(len(shape))) if axes is None else axes
    kept = [a for a in range(len(shape)) if a not in axes]
    order = (*kept, *axes)
    moved = transpose(x, order) if order != tuple(range(len(shape))) else x
    out = Prod.apply(moved.reshape(*[shape[a] for a in kept], -1))
    return out.reshape(keepdims_shape(shape, axes) if keepdims else tuple(shape[a] for a in kept))


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
