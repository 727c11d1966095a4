"""Constant padding (PyTorch's ``pad`` with ``mode="constant"``): the input copied into a larger
array of ``value``. The gradient is the upstream gradient's interior, an indexing gate, so it
differentiates again."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, GateTypeError, Node
from ..gate import Gate


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


def pad(x: Any, pad: Any, mode: str = "constant", value: float = 0.0) -> Any:
    """PyTorch's ``pad``: ``pad`` lists (before, after) widths starting from the LAST axis, e.g.
    ``(left, right, top, bottom)`` for an image; only ``mode="constant"``."""
    if mode != "constant":
        raise GateError(f"gate 'pad': only mode='constant' is supported, got {mode!r}")
    shape = x.data.shape if isinstance(x, Node) else np.shape(x)
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
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        raise GateTypeError(f"gate 'pad': value must be a number, got {value!r}")
    pairs = [(int(widths[i]), int(widths[i + 1])) for i in range(0, len(widths), 2)]
    full = ((0, 0),) * (len(shape) - len(pairs)) + tuple(reversed(pairs))
    return Pad.apply(x, widths=full, value=float(value))
