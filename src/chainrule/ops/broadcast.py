"""Broadcasting as an explicit gate: an input stretched to a larger shape, whose backward sums the
gradient back to the input's shape (the one place where broadcasting is undone)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._util import raw, sum_to_shape


class BroadcastTo(Gate):
    """Stretch x to ``shape`` without copying (a fan-out of each element, so gradients add)."""

    forward_code = "np.broadcast_to({0}, {shape})"

    name = "broadcast_to"
    symbol = "expand"
    pattern = "fork adds"

    @staticmethod
    def forward(ctx, x, *, shape):
        return expand(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return (sum_to_shape(grad, np.shape(ctx.inputs[0].data)),)


def expand(x: Any, shape: tuple) -> np.ndarray:
    """``np.broadcast_to(x, shape)``, a read-only view; one element (a full reduction's gradient)
    takes a quick path, as np.broadcast_to costs microseconds of Python."""
    if type(x) is np.ndarray and x.size == 1 and x.dtype.kind in "fiub":
        view = np.ndarray(shape, dtype=x.dtype, buffer=x.reshape(()), strides=(0,) * len(shape))
        view.flags.writeable = False
        return view
    try:
        return np.broadcast_to(x, shape)
    except ValueError:
        raise GateError(
            f"gate 'broadcast_to': cannot broadcast shape {np.shape(x)} to {tuple(shape)}"
        ) from None


def broadcast_to(x: Any, shape: Any) -> Any:
    """``x`` stretched to ``shape`` (NumPy's broadcast_to, differentiable)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not isinstance(x, Node):
        return x if np.shape(x) == shape else expand(np.asarray(x), shape)
    if x.data.shape == shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def apply_elementwise(gate: type[Gate], *inputs: Any, **options: Any) -> Any:
    """Apply an elementwise gate after stretching every differentiable input to the common shape.

    Constants are left as they are (NumPy broadcasts them); a shape mismatch names the gate and
    the shapes.
    """
    shapes = [np.shape(raw(i)) for i in inputs]
    first = shapes[0]
    if all(s == first for s in shapes):
        return gate.apply(*inputs, **options)
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(s) for s in shapes)
        raise GateError(
            f"gate '{gate.name}': operands of shapes {listed} cannot be broadcast together"
        ) from None
    stretched = [
        BroadcastTo.apply(i, shape=shape)
        if isinstance(i, Node) and i.requires_grad and s != shape
        else i
        for i, s in zip(inputs, shapes)
    ]
    return gate.apply(*stretched, **options)
