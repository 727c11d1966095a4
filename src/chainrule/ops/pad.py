"""Padding: PyTorch's ``pad`` (modes ``constant``, ``reflect``, ``replicate``, ``circular``) and
NumPy's ``pad`` (modes ``constant``, ``reflect``, ``symmetric``, ``edge``, ``wrap``).

Constant padding copies the input into a larger array of ``value``; its gradient is the upstream
gradient's interior, an indexing gate, so it differentiates again. The other modes copy input
elements into the border: each position of a padded axis copies one input position
(:func:`border_index`), so the gradient of an input element is the sum of the gradients of every
position that copied it (``pad_fold``, the adjoint). Padding and folding are each other's
backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, GateTypeError, Node
from ..gate import Gate

_TORCH_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
_NUMPY_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")


def border_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of an axis of length ``n`` padded by (``before``, ``after``), the input
    position it copies, in NumPy's ``mode`` (reflect, symmetric, edge, wrap; widths beyond the
    length repeat the pattern, as ``np.pad`` does)."""
    i = np.arange(-before, n + after)
    if mode == "edge":
        return np.clip(i, 0, n - 1)
    if mode == "wrap":
        return i % n
    if mode == "reflect":
        if n == 1:
            return np.zeros_like(i)
        i %= 2 * (n - 1)
        return np.where(i < n, i, 2 * (n - 1) - i)
    i %= 2 * n  # symmetric: the edge element repeated
    return np.where(i < n, i, 2 * n - 1 - i)


def pad_border(x: np.ndarray, *, widths: tuple, mode: str) -> np.ndarray:
    """``x`` with each axis padded by its (before, after) widths copied from the input."""
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            x = np.take(x, border_index(x.shape[axis], lo, hi, mode), axis=axis)
    return x


def pad_fold(g: np.ndarray, *, widths: tuple, mode: str, shape: tuple) -> np.ndarray:
    """The adjoint of :func:`pad_border`: ``g`` (the padded shape) summed back onto the input
    positions (``shape``) each border position copied."""
    for axis, (lo, hi) in enumerate(widths):
        if not lo and not hi:
            continue
        n = shape[axis]
        index = border_index(n, lo, hi, mode)
        moved = np.moveaxis(g, axis, 0)
        out = moved[lo : lo + n].copy()
        border = np.r_[0:lo, lo + n : lo + n + hi]
        np.add.at(out, index[border], moved[border])
        g = np.moveaxis(out, 0, axis)
    return np.ascontiguousarray(g)


class Pad(Gate):
    """x surrounded by ``widths`` (one (before, after) pair per axis) of ``value``; backward
    slices the gradient's interior back out."""

    name = "pad"
    forward_code = "np.pad({0}, {widths}, constant_values={value})"

    @staticmethod
    def forward(ctx, x, *, widths, value):
        return np.pad(x, widths, constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        shape = np.shape(ctx.inputs[0].data)
        widths = ctx.options["widths"]
        return (grad[tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, shape))],)


class PadBorder(Gate):
    """x with its border copied from itself (reflect, symmetric, edge, wrap); backward folds
    the border's gradient back onto the elements it copied."""

    name = "pad_border"
    symbol = "pad"
    forward_code = "pad_border({0}, widths={widths}, mode={mode})"

    @staticmethod
    def forward(ctx, x, *, widths, mode):
        return pad_border(x, widths=widths, mode=mode)

    @staticmethod
    def backward(ctx, grad):
        shape = np.shape(ctx.inputs[0].data)
        return (PadFold.apply(grad, shape=shape, **ctx.options),)


class PadFold(Gate):
    """Border padding's backward: each border position's gradient added to the input element
    it copied. Linear; its own backward pads again."""

    name = "pad_fold"
    symbol = "padᵀ"
    forward_code = "pad_fold({0}, widths={widths}, mode={mode}, shape={shape})"

    @staticmethod
    def forward(ctx, g, **options):
        return pad_fold(g, **options)

    @staticmethod
    def backward(ctx, grad):
        options = dict(ctx.options)
        del options["shape"]
        return (PadBorder.apply(grad, **options),)


def _shape(x: Any) -> tuple:
    return x.data.shape if isinstance(x, Node) else np.shape(x)


def _apply(x: Any, widths: tuple, mode: str, value: float, gate: str) -> Any:
    """The padding gate for NumPy's ``mode`` on checked (before, after) ``widths`` per axis."""
    if mode == "constant":
        if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
            raise GateTypeError(
                f"gate '{gate}': the constant value must be a number, got {value!r}"
            )
        return Pad.apply(x, widths=widths, value=float(value))
    shape = _shape(x)
    for n, (lo, hi) in zip(shape, widths):
        if n == 0 and (lo or hi):
            raise GateError(
                f"gate '{gate}': cannot pad an empty axis of the input of shape {shape} in "
                f"mode {mode!r} (there is nothing to copy)"
            )
    if not any(lo or hi for lo, hi in widths):
        return Pad.apply(x, widths=widths, value=0.0)  # nothing added: a copy that differentiates
    return PadBorder.apply(x, widths=widths, mode=mode)


def pad(x: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Any:
    """PyTorch's ``pad``: ``pad`` lists (before, after) widths starting from the LAST axis, e.g.
    ``(left, right, top, bottom)`` for an image; ``mode`` is ``constant`` (``value``, default 0),
    ``reflect`` (mirrored without the edge; widths below the axis length), ``replicate`` (the
    edge repeated) or ``circular`` (wrapped around; widths at most the axis length)."""
    shape = _shape(x)
    widths = tuple(pad) if isinstance(pad, (tuple, list)) else None
    if (
        widths is None
        or len(widths) % 2
        or len(widths) > 2 * len(shape)
        or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) for w in widths)
    ):
        raise GateError(
            f"gate 'pad': pad must be a tuple of an even number of ints (at most 2 per axis of "
            f"the {len(shape)}-D input), got {pad!r}"
        )
    if any(w < 0 for w in widths):
        raise GateError(f"gate 'pad': negative padding (cropping) is not supported, got {pad!r}")
    if mode != "constant" and mode not in _TORCH_MODES:
        raise GateError(
            f"gate 'pad': mode must be 'constant', 'reflect', 'replicate' or 'circular', got "
            f"{mode!r}"
        )
    if mode != "constant" and value is not None:
        raise GateError(f"gate 'pad': mode {mode!r} takes no value (got value={value!r})")
    pairs = [(int(widths[i]), int(widths[i + 1])) for i in range(0, len(widths), 2)]
    full = ((0, 0),) * (len(shape) - len(pairs)) + tuple(reversed(pairs))
    for n, (lo, hi) in zip(shape, full):
        if mode == "reflect" and max(lo, hi) >= n and (lo or hi):
            raise GateError(
                f"gate 'pad': reflect padding {(lo, hi)} must be less than the axis length {n} "
                f"(input shape {shape})"
            )
        if mode == "circular" and max(lo, hi) > n:
            raise GateError(
                f"gate 'pad': circular padding {(lo, hi)} must be at most the axis length {n} "
                f"(input shape {shape})"
            )
    return _apply(x, full, _TORCH_MODES.get(mode, mode), 0.0 if value is None else value, "pad")


def _pad_width(pad_width: Any, ndim: int) -> tuple:
    """NumPy's ``pad_width`` (an int, a (before, after) pair, or one pair per axis) as one
    (before, after) pair of non-negative ints per axis."""
    try:
        widths = np.broadcast_to(np.asarray(pad_width), (ndim, 2))
    except ValueError:
        widths = None
    if (
        widths is None
        or widths.dtype.kind not in "iu"
        or isinstance(pad_width, bool)
        or (widths < 0).any()
    ):
        raise GateError(
            f"gate 'pad': pad_width must be non-negative ints: one, a (before, after) pair, or "
            f"one pair per axis of the {ndim}-D input; got {pad_width!r}"
        )
    return tuple((int(lo), int(hi)) for lo, hi in widths)


def np_pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """NumPy's ``pad``: ``pad_width`` per axis (an int, a pair, or a pair per axis); ``mode``
    ``constant`` (``constant_values``, one number), ``reflect``, ``symmetric``, ``edge`` or
    ``wrap`` (widths may exceed the axis length, repeating the pattern as NumPy does)."""
    if mode not in _NUMPY_MODES:
        raise GateError(f"gate 'pad': mode must be one of {', '.join(_NUMPY_MODES)}; got {mode!r}")
    allowed = {"constant_values"} if mode == "constant" else set()
    if set(kwargs) - allowed:
        raise GateError(
            f"gate 'pad': mode {mode!r} takes no {', '.join(sorted(set(kwargs) - allowed))}"
        )
    widths = _pad_width(pad_width, len(_shape(array)))
    return _apply(array, widths, mode, kwargs.get("constant_values", 0.0), "pad")
