"""Small helpers shared by the built-in gates: raw data, shape sums, axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, GateTypeError, Node


def raw(value: Any) -> Any:
    """The plain number or array behind ``value`` (a node during create_graph backward)."""
    return value.data if isinstance(value, Node) else value


def sum_to_shape(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    This is the one place where broadcasting is undone. Works on arrays and on tensors (so it is
    differentiable during create_graph backward).
    """
    gshape = grad.shape
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    if not stretched:  # only added leading axes: summing them away gives the shape
        return grad.sum(axis=tuple(range(lead)))
    grad = grad.sum(axis=tuple(range(lead)) + stretched, keepdims=True)
    return grad.reshape(shape)


def normalize_axis(axis: Any, ndim: int, gate: str) -> tuple | None:
    """``axis`` (None, int or tuple of ints) as a sorted tuple of non-negative axes."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise GateTypeError(f"gate '{gate}': axis must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise GateTypeError(
                f"gate '{gate}': axis must be an int or a tuple of ints, got {axis!r}"
            )
        if not -ndim <= a < ndim:
            raise GateError(
                f"gate '{gate}': axis {a} is out of range for an array of {ndim} dimension(s)"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise GateError(f"gate '{gate}': repeated axis in {axis!r}")
    return tuple(sorted(out))


def keepdims_shape(shape: tuple, axes: tuple | None) -> tuple:
    """The shape a reduction over ``axes`` gives with ``keepdims=True``."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))
