"""Reduction gates: sum, mean, max, min (over ``axis``, an int or a tuple, with ``keepdims``) and
logsumexp.

Sum's backward is a fan-out: every element gets the upstream gradient. Max and min route it to
the elements that attain the extreme; when several tie, they share it equally (PyTorch's rule for
``amax``/``amin``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine import GateError
from ..gate import Gate
from ._util import keepdims_shape, normalize_axis, raw
from .broadcast import broadcast_to
from .elementwise import exp
from .mask import NoGradGate


def _reduced_grad(ctx, grad: Any) -> Any:
    """The upstream gradient reshaped so that it broadcasts against the input."""
    options = ctx.options
    if options["keepdims"]:
        return grad
    return grad.reshape(keepdims_shape(np.shape(ctx.inputs[0].data), options["axis"]))


class _Reduction(Gate, abstract=True):
    """Shared option handling: ``axis`` is normalized to a sorted tuple before the gate runs."""

    @classmethod
    def apply(cls, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        axis = normalize_axis(axis, np.ndim(raw(x)), cls.name)
        return super().apply(x, axis=axis, keepdims=bool(keepdims))


class Sum(_Reduction):
    """Sum over axes: each input element receives the upstream gradient (fan-out)."""

    forward_code = "np.sum({0}, axis={axis}, keepdims={keepdims})"

    symbol = "Σ"

    @staticmethod
    def forward(ctx, x, *, axis, keepdims):
        if type(x) is np.ndarray:
            return x.sum(axis=axis, keepdims=keepdims)
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return (broadcast_to(_reduced_grad(ctx, grad), np.shape(ctx.inputs[0].data)),)


class Mean(_Reduction):
    """Mean over axes: each element receives the upstream gradient divided by the count."""

    forward_code = "np.mean({0}, axis={axis}, keepdims={keepdims})"

    @staticmethod
    def forward(ctx, x, *, axis, keepdims):
        return np.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        shape = np.shape(ctx.inputs[0].data)
        axis = ctx.options["axis"]
        count = math.prod(shape[a] for a in axis) if axis is not None else math.prod(shape)
        return (broadcast_to(_reduced_grad(ctx, grad) / (count or 1), shape),)


class _Extreme(_Reduction, abstract=True):
    """Max or min over axes; the gradient is shared equally by the tied extreme elements."""

    pattern = "max routes"
    reduce = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, x, *, axis, keepdims):
        if np.size(x) == 0 and (axis is None or any(np.shape(x)[a] == 0 for a in axis)):
            raise GateError(f"gate '{cls.name}': cannot reduce an empty array of shape {x.shape}")
        out = cls.reduce(x, axis=axis, keepdims=keepdims)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        share = TieShare.apply(x, _reduced_grad(ctx, out), axis=ctx.options["axis"])
        return (share * _reduced_grad(ctx, grad),)


class Max(_Extreme):
    """Largest element over axes (routes the gradient to it)."""

    name = "max"
    symbol = "max"
    forward_code = "np.max({0}, axis={axis}, keepdims={keepdims})"
    reduce = staticmethod(np.max)


class Min(_Extreme):
    """Smallest element over axes (routes the gradient to it)."""

    name = "min"
    symbol = "min"
    pattern = "min routes"
    forward_code = "np.min({0}, axis={axis}, keepdims={keepdims})"
    reduce = staticmethod(np.min)


class LogSumExp(_Reduction):
    """log(sum(exp(x))) over axes, computed stably; local gradient softmax(x)."""

    symbol = "logΣexp"
    forward_code = "logsumexp_forward({0}, {axis}, {keepdims})"

    @staticmethod
    def forward(ctx, x, *, axis, keepdims):
        out = logsumexp_forward(x, axis, keepdims)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return (exp(x - _reduced_grad(ctx, out)) * _reduced_grad(ctx, grad),)


def logsumexp_forward(x: np.ndarray, axis: tuple | None, keepdims: bool) -> np.ndarray:
    """log(sum(exp(x))) over ``axis`` with the maximum subtracted first (a row of -inf gives
    -inf); the gate's forward and its staged code."""
    if np.size(x) == 0:
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = out.reshape(np.shape(np.sum(x, axis=axis)))
    return out


class TieShare(NoGradGate):
    """Each element's share of a max/min reduction's gradient: 1/k on the k elements equal to
    the (kept-dims) extreme, 0 elsewhere, in x's dtype. A routing mask without gradient."""

    name = "tie_share"

    @staticmethod
    def forward(ctx, x, kept, *, axis):
        hit = np.equal(x, kept).astype(x.dtype if x.dtype.kind == "f" else np.float64)
        return hit / hit.sum(axis=axis, keepdims=True)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    """Sum over ``axis`` (None for all)."""
    return Sum.apply(x, axis, keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (None for all)."""
    return Mean.apply(x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis``; ties share the gradient equally."""
    return Max.apply(x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Minimum over ``axis``; ties share the gradient equally."""
    return Min.apply(x, axis, keepdims)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over ``axis``, stable for large inputs (±1e4)."""
    return LogSumExp.apply(x, axis, keepdims)
