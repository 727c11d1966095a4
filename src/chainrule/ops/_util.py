"""Small helpers shared by the built-in gates: raw data, dtype-preserving masks, shape sums."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, GateTypeError, Node


def raw(value: Any) -> Any:
    """The plain number or array behind ``value`` (a node during create_graph backward)."""
    return value.data if isinstance(value, Node) else value


def as_mask(condition: Any, like: Any) -> Any:
    """A 0/1 multiplier with ``like``'s dtype (so float32 gradients stay float32)."""
    if type(condition) is bool:
        return float(condition)
    dtype = getattr(raw(like), "dtype", None)
    if dtype is None or not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    return np.asarray(condition, dtype=dtype)


def sum_to_shape(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    This is the one place where broadcasting is undone. Works on arrays and on tensors (so it is
    differentiable during create_graph backward).
    """
    gshape = grad.shape
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
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


# --- staged code (chainrule.stage): helpers for the gates' code templates ------------------------
def _axes_literal(axes: tuple) -> str:
    return repr(axes[0]) if len(axes) == 1 else repr(tuple(axes))


def axis_code(options: dict) -> str:
    """A reduction's ``axis``/``keepdims`` options as keyword arguments of staged code."""
    code = "" if options["axis"] is None else f", axis={_axes_literal(options['axis'])}"
    return code + (", keepdims=True" if options["keepdims"] else "")


def reduced_grad_code(site: Any, expr: str | None = None) -> str:
    """Staged code for a reduction's output-shaped ``expr`` (default: the upstream gradient)
    reshaped so that it broadcasts against the input, as backward needs it."""
    expr = site.g if expr is None else expr
    options = site.options
    if options["keepdims"] or options["axis"] is None:
        return expr
    return f"np.reshape({expr}, {keepdims_shape(site.shapes[0], options['axis'])!r})"


def sum_to_shape_code(expr: str, shape: tuple, to: tuple) -> str:
    """Staged code summing ``expr`` (of ``shape``) over broadcast axes back to ``to``, the same
    reduction as :func:`sum_to_shape`."""
    lead = len(shape) - len(to)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(to) if n == 1 and shape[lead + i] != 1
    )
    if not axes:
        return expr if tuple(shape) == tuple(to) else f"np.reshape({expr}, {tuple(to)!r})"
    if lead == 0:
        return f"np.sum({expr}, axis={_axes_literal(axes)}, keepdims=True)"
    if len(axes) == lead:
        return f"np.sum({expr}, axis={_axes_literal(axes)})"
    return f"np.reshape(np.sum({expr}, axis={_axes_literal(axes)}, keepdims=True), {tuple(to)!r})"
