"""Contractions with NumPy's names: ``einsum`` as a gate, and ``tensordot``, ``outer``,
``diagonal``, ``trace`` and ``norm`` written with it or with other gates.

An einsum is linear in each operand, so the gradient of one operand is again an einsum: the
upstream gradient contracted with the other operands, written to that operand's subscripts (and
broadcast along letters only that operand had, which it summed away). It differentiates again
like any einsum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError
from ..gate import Gate
from ._util import raw
from .broadcast import broadcast_to
from .elementwise import absolute, sqrt
from .shape import getitem, transpose


class Einsum(Gate):
    """``np.einsum(subscripts, *operands)`` with explicit output subscripts; each operand's
    gradient is the einsum of the upstream gradient with the other operands."""

    name = "einsum"
    symbol = "Σ∏"

    @staticmethod
    def forward_code(site):
        return f"np.einsum({site.lit(site.options['subscripts'])}, {', '.join(site.args)})"

    @staticmethod
    def forward(ctx, *operands, subscripts):
        ctx.save_for_backward(*operands)
        return np.einsum(subscripts, *operands)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        inputs, output = ctx.options["subscripts"].split("->")
        terms = inputs.split(",")
        grads = []
        for k, need in enumerate(ctx.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            others = [t for i, t in enumerate(terms) if i != k]
            present = set(output).union(*others)
            kept = "".join(c for c in terms[k] if c in present)
            spec = ",".join([output, *others]) + "->" + kept
            g = Einsum.apply(grad, *[o for i, o in enumerate(operands) if i != k], subscripts=spec)
            if kept != terms[k]:  # letters only this operand had: it summed them, so broadcast
                shape = np.shape(raw(operands[k]))
                g = broadcast_to(
                    g.reshape(tuple(n if c in present else 1 for c, n in zip(terms[k], shape))),
                    shape,
                )
            grads.append(g)
        return tuple(grads)


def _explicit(subscripts: str, operands: tuple) -> str:
    """``subscripts`` with its output written out (NumPy's implicit rule: the letters that
    appear once, sorted), after checking what the gate supports."""
    if not isinstance(subscripts, str):
        raise GateError(f"gate 'einsum': subscripts must be a string, got {subscripts!r}")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise GateError("gate 'einsum': ellipsis ('...') is not supported; name every axis")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise GateError(
            f"gate 'einsum': {subscripts!r} names {len(terms)} operand(s) but {len(operands)} "
            "were given"
        )
    for term, operand in zip(terms, operands):
        if not term.isalpha() and term:
            raise GateError(f"gate 'einsum': subscripts must be letters, got {term!r}")
        if len(set(term)) != len(term):
            raise GateError(
                f"gate 'einsum': a letter repeated within one operand ({term!r}, a diagonal) is "
                "not supported; use cr.diagonal"
            )
        if len(term) != np.ndim(raw(operand)):
            raise GateError(
                f"gate 'einsum': subscripts {term!r} do not fit an operand of shape "
                f"{np.shape(raw(operand))}"
            )
    if not arrow:
        letters = "".join(terms)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return ",".join(terms) + "->" + output


def einsum(subscripts: str, *operands: Any) -> Any:
    """Einstein summation as NumPy's ``einsum`` (explicit or implicit output; no ellipsis and no
    letter repeated within one operand), differentiable in every operand; one gate."""
    spec = _explicit(subscripts, operands)
    try:
        np.einsum(spec, *[np.empty(np.shape(raw(o)), dtype=np.int8) for o in operands])
    except ValueError as err:
        raise GateError(f"gate 'einsum': {err} (subscripts {subscripts!r})") from None
    return Einsum.apply(*operands, subscripts=spec)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """NumPy's ``tensordot``: sum the products over ``axes`` (an int: the last axes of a with the
    first of b; or a pair of axis lists), written as an einsum."""
    na, nb = np.ndim(raw(a)), np.ndim(raw(b))
    if isinstance(axes, (int, np.integer)):
        a_axes, b_axes = list(range(na - axes, na)), list(range(axes))
    else:
        a_axes, b_axes = (
            ([axes[0]] if np.ndim(axes[0]) == 0 else list(axes[0])),
            ([axes[1]] if np.ndim(axes[1]) == 0 else list(axes[1])),
        )
    if len(a_axes) != len(b_axes) or na + nb > len(_LETTERS):
        raise GateError(f"gate 'tensordot': axes {axes!r} do not pair up")
    a_axes, b_axes = [i % na for i in a_axes], [i % nb for i in b_axes]
    ta, tb = list(_LETTERS[:na]), list(_LETTERS[na : na + nb])
    for i, j in zip(a_axes, b_axes):
        tb[j] = ta[i]
    out = [c for i, c in enumerate(ta) if i not in a_axes] + [
        c for j, c in enumerate(tb) if j not in b_axes
    ]
    return einsum(f"{''.join(ta)},{''.join(tb)}->{''.join(out)}", a, b)


def outer(a: Any, b: Any) -> Any:
    """NumPy's ``outer``: every element of ``a`` (flattened) times every element of ``b``."""
    return einsum("i,j->ij", a.reshape(-1), b.reshape(-1))


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """NumPy's ``diagonal``: the elements x[..., i, i + offset] of the two axes, as the last
    axis (an indexing gate, so the gradient lands back on the diagonal)."""
    nd = np.ndim(raw(x))
    a1, a2 = axis1 % nd, axis2 % nd
    if a1 == a2:
        raise GateError("gate 'diagonal': axis1 and axis2 must differ")
    order = [i for i in range(nd) if i not in (a1, a2)] + [a1, a2]
    moved = transpose(x, tuple(order)) if order != list(range(nd)) else x
    rows, cols = np.shape(raw(x))[a1], np.shape(raw(x))[a2]
    start_r, start_c = max(-offset, 0), max(offset, 0)
    length = max(0, min(rows - start_r, cols - start_c))
    index = np.arange(length)
    return getitem(moved, (Ellipsis, index + start_r, index + start_c))


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """NumPy's ``trace``: the sum of :func:`diagonal`."""
    return diagonal(x, offset, axis1, axis2).sum(axis=-1)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.linalg.norm`` for vectors and the Frobenius norm: ord None/2/'fro' (√Σx²), 1 (Σ|x|)
    or inf (max |x|) over ``axis`` (one axis, or None for all elements); others are refused."""
    if axis is not None and not isinstance(axis, (int, np.integer)):
        if ord not in (None, "fro"):
            raise GateError(f"gate 'norm': ord={ord!r} over several axes is not supported")
    if ord in (None, 2, "fro"):
        if ord == 2 and axis is None and np.ndim(raw(x)) == 2:
            raise GateError(
                "gate 'norm': the matrix 2-norm (largest singular value) is not supported"
            )
        return sqrt((x * x).sum(axis=axis, keepdims=keepdims))
    if ord == 1:
        return absolute(x).sum(axis=axis, keepdims=keepdims)
    if ord == np.inf:
        return absolute(x).max(axis=axis, keepdims=keepdims)
    raise GateError(f"gate 'norm': ord={ord!r} is not supported (None, 2, 'fro', 1 or inf)")
