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
from ._util import as_mask, axis_code, keepdims_shape, normalize_axis, raw, reduced_grad_code
from .broadcast import broadcast_to
from .elementwise import exp


def _reduced_grad(ctx, grad: Any) -> Any:
    """The upstream gradient reshaped so that it broadcasts against the input."""
    shape = np.shape(ctx.inputs[0].data)
    if ctx.options["keepdims"]:
        return grad
    return grad.reshape(keepdims_shape(shape, ctx.options["axis"]))


class _Reduction(Gate, abstract=True):
    """Shared option handling: ``axis`` is normalized to a sorted tuple before the gate runs."""

    @classmethod
    def apply(cls, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        axis = normalize_axis(axis, np.ndim(raw(x)), cls.name)
        return super().apply(x, axis=axis, keepdims=bool(keepdims))


class Sum(_Reduction):
    """Sum over axes: each input element receives the upstream gradient (fan-out)."""

    @staticmethod
    def forward_code(site):
        return site.format("np.sum({0}") + axis_code(site.options) + ")"

    @staticmethod
    def backward_code(site):
        return (site.format("np.broadcast_to(" + reduced_grad_code(site) + ", {s0})"),)

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

    @staticmethod
    def forward_code(site):
        return site.format("np.mean({0}") + axis_code(site.options) + ")"

    @staticmethod
    def backward_code(site):
        shape, axis = site.shapes[0], site.options["axis"]
        count = math.prod(shape[a] for a in axis) if axis is not None else math.prod(shape)
        grad = reduced_grad_code(site)
        return (site.format(f"np.broadcast_to({grad} / {count or 1}, {{s0}})"),)

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

    @classmethod
    def forward_code(cls, site):
        return site.format(f"np.{cls.name}({{0}}") + axis_code(site.options) + ")"

    @staticmethod
    def backward_code(site):
        kept = reduced_grad_code(site, site.out)
        hit = site.format(f"({{0}} == {kept})")
        axis = site.lit(site.options["axis"])
        grad = reduced_grad_code(site)
        return (f"{grad} * ({hit} / np.sum({hit}, axis={axis}, keepdims=True))",)

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
        x, out = (raw(v) for v in ctx.saved_tensors)
        axis = ctx.options["axis"]
        kept = out if ctx.options["keepdims"] else np.reshape(out, keepdims_shape(x.shape, axis))
        hit = as_mask(x == kept, x)
        share = hit / hit.sum(axis=axis, keepdims=True)
        return (_reduced_grad(ctx, grad) * share,)


class Max(_Extreme):
    """Largest element over axes (routes the gradient to it)."""

    name = "max"
    symbol = "max"
    reduce = staticmethod(np.max)


class Min(_Extreme):
    """Smallest element over axes (routes the gradient to it)."""

    name = "min"
    symbol = "min"
    pattern = "min routes"
    reduce = staticmethod(np.min)


class LogSumExp(_Reduction):
    """log(sum(exp(x))) over axes, computed stably; local gradient softmax(x)."""

    @staticmethod
    def forward_code(site):
        axis = site.lit(site.options["axis"])
        out = site.format(
            f"np.log(np.sum(np.exp({{0}} - {{h1}}), axis={axis}, keepdims=True)) + {{h1}}"
        )
        if not site.options["keepdims"]:
            out = f"np.reshape({out}, {site.lit(site.out_shape)})"
        return (
            site.format(f"{{h0}} = np.max({{0}}, axis={axis}, keepdims=True)"),
            site.format("{h1} = np.where(np.isfinite({h0}), {h0}, 0)"),
            out,
        )

    @staticmethod
    def backward_code(site):
        kept = reduced_grad_code(site, site.out)
        return (site.format(f"{reduced_grad_code(site)} * np.exp({{0}} - {kept})"),)

    symbol = "logΣexp"

    @staticmethod
    def forward(ctx, x, *, axis, keepdims):
        if np.size(x) == 0:
            out = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
        else:
            m = np.max(x, axis=axis, keepdims=True)
            m = np.where(np.isfinite(m), m, 0)
            with np.errstate(divide="ignore"):  # a row of -inf has logsumexp -inf
                out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
            if not keepdims:
                out = out.reshape(np.shape(np.sum(x, axis=axis)))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        shape = np.shape(raw(x))
        kept = (
            out
            if ctx.options["keepdims"]
            else out.reshape(keepdims_shape(shape, ctx.options["axis"]))
        )
        return (_reduced_grad(ctx, grad) * exp(x - kept),)


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
