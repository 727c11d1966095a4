"""Shape gates: reshape, transpose, indexing (basic and advanced), concatenate and stack.

They move elements without changing them, so their backward moves the gradient back: reshape
reshapes it, transpose un-permutes it, indexing scatters it (adding where an index repeats),
concatenate and stack slice it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine import GateError, GateTypeError
from ..gate import Gate
from ._util import normalize_axis, raw


class Reshape(Gate):
    """The same elements in a new shape; the gradient is reshaped back."""

    forward_code = "np.reshape({0}, {shape})"

    @staticmethod
    def forward(ctx, x, *, shape):
        return np.reshape(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return (grad.reshape(np.shape(ctx.inputs[0].data)),)


class Transpose(Gate):
    """Axes permuted; the gradient is permuted back with the inverse permutation."""

    @staticmethod
    def forward_code(site):
        axes = site.options["axes"]
        reverse = axes == tuple(range(len(axes)))[::-1]
        return site.format("{0}.T" if reverse else "np.transpose({0}, {axes})")

    symbol = "T"

    @staticmethod
    def forward(ctx, x, *, axes):
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        axes = ctx.options["axes"]
        return (grad.transpose(tuple(int(a) for a in np.argsort(axes))),)


def _is_basic(index: tuple) -> bool:
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in index)


class GetItem(Gate):
    """x[index]; backward scatters the gradient into zeros, adding where indices repeat."""

    name = "getitem"
    symbol = "[]"
    forward_code = "{0}[{index:subscript}]"

    @staticmethod
    def forward(ctx, x, *, index):
        try:
            return x[index]
        except IndexError as err:
            raise GateError(f"gate 'getitem': {err} (array shape {np.shape(x)})") from None

    @staticmethod
    def backward(ctx, grad):
        x = ctx.inputs[0].data
        return (scatter_add(grad, ctx.options["index"], np.shape(x), x.dtype),)


class ScatterAdd(Gate):
    """zeros(shape) plus ``grad`` at ``index``: indexing's backward, itself differentiable."""

    name = "scatter_add"
    forward_code = "scatter_add_forward({0}, {index}, {shape}, {dtype})"

    @staticmethod
    def forward(ctx, g, *, index, shape, dtype):
        return scatter_add_forward(g, index, shape, dtype)

    @staticmethod
    def backward(ctx, grad):
        return (getitem(grad, ctx.options["index"]),)


def scatter_add_forward(g: Any, index: tuple, shape: tuple, dtype: Any) -> np.ndarray:
    """zeros(shape) with ``g`` added at ``index`` (np.add.at where advanced indices may repeat);
    the gate's forward and its staged code."""
    out = np.zeros(shape, dtype=np.result_type(dtype, getattr(g, "dtype", dtype)))
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def scatter_add(grad: Any, index: tuple, shape: tuple, dtype: Any) -> Any:
    """A zero array of ``shape`` with ``grad`` added at ``index``."""
    return ScatterAdd.apply(grad, index=index, shape=shape, dtype=dtype)


class Concatenate(Gate):
    """Inputs joined along an axis; the gradient is cut back into the inputs' pieces."""

    @staticmethod
    def forward_code(site):
        return site.format(f"np.concatenate(({', '.join(site.args)},), axis={{axis}})")

    symbol = "concat"

    @staticmethod
    def forward(ctx, *xs, axis):
        try:
            return np.concatenate(xs, axis=axis)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(x)) for x in xs)
            raise GateError(f"gate 'concatenate': {err} (shapes {shapes})") from None

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.options["axis"]
        grads, start = [], 0
        lead = (slice(None),) * (axis % grad.ndim)
        for inp in ctx.inputs:
            size = np.shape(inp.data)[axis]
            grads.append(getitem(grad, lead + (slice(start, start + size),)))
            start += size
        return tuple(grads)


class Stack(Gate):
    """Inputs stacked along a new axis; each input's gradient is its slice of the upstream one."""

    @staticmethod
    def forward_code(site):
        return site.format(f"np.stack(({', '.join(site.args)},), axis={{axis}})")

    @staticmethod
    def forward(ctx, *xs, axis):
        try:
            return np.stack(xs, axis=axis)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(x)) for x in xs)
            raise GateError(f"gate 'stack': {err} (shapes {shapes})") from None

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.options["axis"] % grad.ndim
        lead = (slice(None),) * axis
        return tuple(getitem(grad, lead + (i,)) for i in range(len(ctx.inputs)))


def reshape(x: Any, *shape: Any) -> Any:
    """``x`` with a new shape (one dimension may be -1), like ``ndarray.reshape``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, np.ndarray)):
        shape = tuple(shape[0])
    data = raw(x)
    bad = [s for s in shape if not isinstance(s, (int, np.integer)) or isinstance(s, bool)]
    if bad:
        raise GateTypeError(
            f"gate 'reshape': a shape holds integers, got {bad[0]!r} in {tuple(shape)!r}"
        )
    try:
        target = _resolve_shape(np.shape(data), tuple(int(s) for s in shape))
    except ValueError as err:
        raise GateError(f"gate 'reshape': {err}") from None
    if target == np.shape(data):
        return x
    return Reshape.apply(x, shape=target)


def _resolve_shape(old: tuple, new: tuple) -> tuple:
    size = math.prod(old)
    if new.count(-1) > 1:
        raise ValueError(f"only one dimension can be -1, got {new}")
    known = math.prod(s for s in new if s != -1)
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape an array of shape {old} into shape {new}")
        new = tuple(size // known if s == -1 else s for s in new)
    if math.prod(new) != size or any(s < 0 for s in new):
        raise ValueError(f"cannot reshape an array of shape {old} into shape {new}")
    return new


def transpose(x: Any, axes: Any = None) -> Any:
    """Axes permuted (reversed when ``axes`` is None), like ``np.transpose``."""
    ndim = np.ndim(raw(x))
    if axes is None:
        axes = tuple(range(ndim - 1, -1, -1))
    else:
        axes = tuple(int(a) % max(ndim, 1) for a in axes)
        if sorted(axes) != list(range(ndim)):
            raise GateError(f"gate 'transpose': axes {axes} are not a permutation of {ndim} axes")
    if axes == tuple(range(ndim)):
        return x
    return Transpose.apply(x, axes=axes)


def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    """Two axes exchanged, like ``np.swapaxes``."""
    ndim = np.ndim(raw(x))
    a1, a2 = (normalize_axis(a, ndim, "swapaxes")[0] for a in (axis1, axis2))
    axes = list(range(ndim))
    axes[a1], axes[a2] = axes[a2], axes[a1]
    return transpose(x, axes)


def squeeze(x: Any, axis: Any = None) -> Any:
    """Length-1 axes removed (all of them, or those in ``axis``), like ``np.squeeze``."""
    shape = np.shape(raw(x))
    axes = normalize_axis(axis, len(shape), "squeeze")
    if axes is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    for a in axes:
        if shape[a] != 1:
            raise GateError(f"gate 'squeeze': axis {a} has length {shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(shape) if i not in axes))


def expand_dims(x: Any, axis: Any) -> Any:
    """New length-1 axes inserted at ``axis`` (int or tuple), like ``np.expand_dims``."""
    shape = np.shape(raw(x))
    axes = normalize_axis(
        axis, len(shape) + (1 if isinstance(axis, int) else len(axis)), "expand_dims"
    )
    out = list(shape)
    for a in axes:
        out.insert(a, 1)
    return reshape(x, tuple(out))


def getitem(x: Any, index: Any) -> Any:
    """``x[index]`` with NumPy's basic and advanced indexing; differentiable in ``x``."""
    index = _normalize_index(index)
    return GetItem.apply(x, index=index)


def _normalize_index(index: Any) -> tuple:
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        item = raw(item)
        if isinstance(item, list):  # [] is an empty integer index, as in NumPy
            item = np.asarray(item, dtype=np.intp if not item else None)
        if isinstance(item, np.ndarray) and item.dtype.kind not in "biu":
            raise GateTypeError(
                f"gate 'getitem': index arrays must be integer or boolean, got {item.dtype}"
            )
        out.append(item)
    return tuple(out)


def concatenate(xs: Any, axis: int = 0) -> Any:
    """Arrays joined along an existing axis (flattened first for ``axis=None``), like
    ``np.concatenate``."""
    xs = tuple(xs)
    if not xs:
        raise GateError("gate 'concatenate': needs at least one input")
    if axis is None:  # NumPy's meaning: flatten every input, then join
        xs, axis = tuple(reshape(x, (-1,)) for x in xs), 0
    return Concatenate.apply(*xs, axis=axis)


def stack(xs: Any, axis: int = 0) -> Any:
    """Arrays stacked along a new axis, like ``np.stack``."""
    xs = tuple(xs)
    if not xs:
        raise GateError("gate 'stack': needs at least one input")
    return Stack.apply(*xs, axis=axis)


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``x`` cut into pieces along ``axis``, like ``np.split``; each piece is an indexing gate."""
    shape = np.shape(raw(x))
    (ax,) = normalize_axis(axis, len(shape), "split")
    n = shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or n % sections:
            raise GateError(
                f"gate 'split': axis {ax} of length {n} cannot be split into {sections} equal parts"
            )
        bounds = list(range(0, n + 1, n // sections)) if n else [0] * (sections + 1)
    else:
        bounds = [0, *[int(i) for i in indices_or_sections], n]
    lead = (slice(None),) * ax
    return [getitem(x, lead + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:])]
