"""Rearranging gates with NumPy's names, each written with an existing gate so that the
gradient moves back the way the elements came: ``flip``, ``roll``, ``repeat`` and ``tile`` index
(the gradient is scattered back, adding where an element was used twice), ``tril``/``triu`` keep a
triangle (a gate whose gradient keeps the same triangle), ``moveaxis`` transposes.
``argmax``/``argmin`` return plain integer arrays: no gradient flows through an index."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError
from ..gate import Gate
from ._util import normalize_axis, raw
from .shape import getitem, transpose


def _along(x: Any, axis: int, index: np.ndarray) -> Any:
    """``x`` indexed by the integer array ``index`` along ``axis``."""
    return getitem(x, (slice(None),) * axis + (index,))


def _one_axis(x: Any, axis: Any, name: str) -> int:
    return normalize_axis(axis, np.ndim(raw(x)), name)[0]


def flip(x: Any, axis: Any = None) -> Any:
    """NumPy's ``flip``: the order of elements reversed along ``axis`` (all axes when None)."""
    nd = np.ndim(raw(x))
    axes = normalize_axis(axis, nd, "flip")
    axes = range(nd) if axes is None else axes
    return getitem(x, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(nd)))


def roll(x: Any, shift: int, axis: Any = None) -> Any:
    """NumPy's ``roll``: elements shifted by ``shift`` along ``axis`` (of the flattened array
    when None), wrapping around."""
    if axis is None:
        return roll(x.reshape(-1), shift, 0).reshape(np.shape(raw(x)))
    axis = _one_axis(x, axis, "roll")
    n = np.shape(raw(x))[axis]
    return _along(x, axis, np.roll(np.arange(n), shift))


def repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    """NumPy's ``repeat``: each element repeated ``repeats`` times along ``axis`` (of the
    flattened array when None); the gradient adds the copies."""
    if axis is None:
        return repeat(x.reshape(-1), repeats, 0)
    axis = _one_axis(x, axis, "repeat")
    n = np.shape(raw(x))[axis]
    try:
        index = np.repeat(np.arange(n), repeats)
    except ValueError as err:
        raise GateError(f"gate 'repeat': {err}") from None
    return _along(x, axis, index)


def tile(x: Any, reps: Any) -> Any:
    """NumPy's ``tile``: ``x`` repeated ``reps`` times along each axis; the gradient adds the
    copies."""
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    shape = np.shape(raw(x))
    nd = max(len(shape), len(reps))
    x = x.reshape((1,) * (nd - len(shape)) + shape)
    reps = (1,) * (nd - len(reps)) + reps
    for axis, r in enumerate(reps):
        if r != 1:
            x = _along(x, axis, np.tile(np.arange(np.shape(raw(x))[axis]), r))
    return x


class Triangle(Gate):
    """The elements on and below (``lower``) or on and above the ``k``-th diagonal of the last
    two axes, zeros elsewhere: a mask of positions, so the gradient is masked the same way."""

    name = "triangle"
    symbol = "tri"

    @staticmethod
    def forward_code(site):
        return site.format("np.tril({0}, {k})" if site.options["lower"] else "np.triu({0}, {k})")

    @staticmethod
    def forward(ctx, x, *, k, lower):
        return np.tril(x, k) if lower else np.triu(x, k)

    @staticmethod
    def backward(ctx, grad):
        return (Triangle.apply(grad, **ctx.options),)


def set_diagonal(x: np.ndarray, value: float) -> np.ndarray:
    """A copy of ``x`` with the diagonal of its last two axes set to ``value``."""
    out = np.array(x)
    n = min(out.shape[-2:])
    out[..., np.arange(n), np.arange(n)] = value
    return out


class SetDiagonal(Gate):
    """``x`` with the diagonal of its last two axes set to ``value``; the gradient is the
    upstream gradient with that diagonal set to 0."""

    name = "set_diagonal"
    forward_code = "set_diagonal({0}, {value})"

    @staticmethod
    def forward(ctx, x, *, value):
        return set_diagonal(x, value)

    @staticmethod
    def backward(ctx, grad):
        return (SetDiagonal.apply(grad, value=0.0),)


def _triangle(x: Any, k: int, lower: bool, name: str) -> Any:
    shape = np.shape(raw(x))
    if len(shape) < 2:
        raise GateError(f"gate '{name}': input must be at least 2-D, got shape {shape}")
    return Triangle.apply(x, k=int(k), lower=lower)


def tril(x: Any, k: int = 0) -> Any:
    """NumPy's ``tril``: the elements on and below the ``k``-th diagonal, zeros above."""
    return _triangle(x, k, True, "tril")


def triu(x: Any, k: int = 0) -> Any:
    """NumPy's ``triu``: the elements on and above the ``k``-th diagonal, zeros below."""
    return _triangle(x, k, False, "triu")


def moveaxis(x: Any, source: Any, destination: Any) -> Any:
    """NumPy's ``moveaxis``: axes moved to new positions, the others keeping their order."""
    nd = np.ndim(raw(x))
    src = [source] if np.ndim(source) == 0 else list(source)
    dst = [destination] if np.ndim(destination) == 0 else list(destination)
    if len(src) != len(dst):
        raise GateError("gate 'moveaxis': source and destination must have the same length")
    for axes in (src, dst):  # in range, none repeated
        normalize_axis(tuple(axes), nd, "moveaxis")
    src, dst = [a % nd for a in src], [a % nd for a in dst]
    order = [a for a in range(nd) if a not in src]
    for d, a in sorted(zip(dst, src)):
        order.insert(d, a)
    return transpose(x, tuple(order))


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Indices of the maxima, as NumPy's ``argmax``: a plain integer array (no gradient)."""
    return np.argmax(raw(x), axis=axis, keepdims=keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Indices of the minima, as NumPy's ``argmin``: a plain integer array (no gradient)."""
    return np.argmin(raw(x), axis=axis, keepdims=keepdims)
