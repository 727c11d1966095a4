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
    if not np.isfinite(m.sum()):  # the rare row with an infinity (one reduction tells)
        m = np.where(np.isneginf(m), 0, m)
    return x - m


def softmax_forward(x: np.ndarray, axis: int) -> np.ndarray:
    """exp(x) / Σ exp(x) along ``axis``, the maximum subtracted first (the gate's forward and its
    staged code)."""
    e = np.exp(_shifted(x, axis))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax_forward(x: np.ndarray, axis: int) -> np.ndarray:
    """x - logsumexp(x) along ``axis``, without forming softmax."""
    z = _shifted(x, axis)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


class Softmax(Gate):
    """exp(x) / Σ exp(x) along ``axis``."""

    forward_code = "softmax_forward({0}, {axis})"
    symbol = "softmax"

    @staticmethod
    def forward(ctx, x, *, axis):
        out = softmax_forward(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        axis = ctx.options["axis"]
        return (s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)


class LogSoftmax(Gate):
    """x - logsumexp(x) along ``axis``."""

    forward_code = "log_softmax_forward({0}, {axis})"
    name = "log_softmax"
    symbol = "log softmax"

    @staticmethod
    def forward(ctx, x, *, axis):
        out = log_softmax_forward(x, axis)
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
