"""Softmax and log-softmax gates over an axis, stable for large inputs (the maximum is subtracted
before exponentiating). Their backward uses only the gate's output:
softmax: dx = s * (g - Σ g·s); log-softmax: dx = g - exp(out) * Σ g.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..gate import Gate
from ._util import normalize_axis, raw
from .elementwise import exp


def _shifted(x: Any, axis: int) -> Any:
    """x minus its maximum along ``axis``; a row of -inf is left as it is (its softmax is then
    0/0 = nan), a row holding +inf becomes nan (as in PyTorch: inf - inf)."""
    m = np.max(x, axis=axis, keepdims=True)
    return x - np.where(np.isneginf(m), 0, m)


class Softmax(Gate):
    """exp(x) / Σ exp(x) along ``axis``."""

    @staticmethod
    def forward_code(site):
        return (
            site.format("{h0} = np.max({0}, axis={axis}, keepdims=True)"),
            site.format("{h1} = np.exp({0} - np.where(np.isneginf({h0}), 0, {h0}))"),
            site.format("{h1} / np.sum({h1}, axis={axis}, keepdims=True)"),
        )

    backward_code = ("{out} * ({g} - np.sum({g} * {out}, axis={axis}, keepdims=True))",)

    symbol = "softmax"

    @staticmethod
    def forward(ctx, x, *, axis):
        e = np.exp(_shifted(x, axis))
        out = e / np.sum(e, axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        axis = ctx.options["axis"]
        return (s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)


class LogSoftmax(Gate):
    """x - logsumexp(x) along ``axis``."""

    @staticmethod
    def forward_code(site):
        return (
            site.format("{h0} = np.max({0}, axis={axis}, keepdims=True)"),
            site.format("{h1} = {0} - np.where(np.isneginf({h0}), 0, {h0})"),
            site.format("{h1} - np.log(np.sum(np.exp({h1}), axis={axis}, keepdims=True))"),
        )

    backward_code = ("{g} - np.exp({out}) * np.sum({g}, axis={axis}, keepdims=True)",)

    name = "log_softmax"
    symbol = "log softmax"

    @staticmethod
    def forward(ctx, x, *, axis):
        z = _shifted(x, axis)
        out = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        axis = ctx.options["axis"]
        return (grad - exp(out) * grad.sum(axis=axis, keepdims=True),)


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along ``axis`` (default the last)."""
    (axis,) = normalize_axis(axis, max(np.ndim(raw(x)), 1), "softmax")
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """Log of softmax along ``axis``, computed without forming softmax."""
    (axis,) = normalize_axis(axis, max(np.ndim(raw(x)), 1), "log_softmax")
    return LogSoftmax.apply(x, axis=axis)
