"""Matrix product gates. The gradient of C = A @ B is dA = dC @ Bᵀ and dB = Aᵀ @ dC: products of
the upstream gradient with the other operand, never an explicit Jacobian. 1-D operands and
batched (N-D, broadcast) operands follow ``np.matmul``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError
from ..gate import Gate
from ._util import raw, sum_to_shape
from .shape import swapaxes


class MatMul(Gate):
    """A @ B (``np.matmul`` semantics); backward multiplies by the transposed other operand."""

    forward_code = "{0} @ {1}"

    symbol = "@"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            raise GateError(_mismatch(np.shape(a), np.shape(b))) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        in_a, in_b = ctx.inputs
        need_a, need_b = in_a.requires_grad, in_b.requires_grad
        if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 == b.ndim:
            return (grad @ b.T if need_a else None, a.T @ grad if need_b else None)
        a_nd, b_nd = np.ndim(raw(a)), np.ndim(raw(b))
        if a_nd == 2 and b_nd == 2:
            return (grad @ b.T if need_a else None, a.T @ grad if need_b else None)
        if a_nd == 1 and b_nd == 1:
            return (grad * b if need_a else None, grad * a if need_b else None)
        a2 = a.reshape((1, -1)) if a_nd == 1 else a
        b2 = b.reshape((-1, 1)) if b_nd == 1 else b
        g2 = grad
        if a_nd == 1:
            g2 = _insert_axis(g2, -1 if b_nd == 1 else -2)
        if b_nd == 1:
            g2 = _insert_axis(g2, -1)
        ga = gb = None
        if need_a:
            ga = sum_to_shape(g2 @ swapaxes(b2, -1, -2), np.shape(raw(a2)))
            ga = ga.reshape(np.shape(raw(a)))
        if need_b:
            gb = sum_to_shape(swapaxes(a2, -1, -2) @ g2, np.shape(raw(b2)))
            gb = gb.reshape(np.shape(raw(b)))
        return ga, gb


def _mismatch(sa: tuple, sb: tuple) -> str:
    """Why ``np.matmul`` refused shapes ``sa`` and ``sb``: inner dimensions or batch dimensions."""
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != inner_b:
        return (
            f"gate 'matmul': shapes {sa} and {sb} are not aligned (inner dimensions {sa[-1]} "
            f"and {inner_b} must match)"
        )
    return (
        f"gate 'matmul': shapes {sa} and {sb} have batch dimensions {sa[:-2]} and {sb[:-2]} "
        "that cannot be broadcast together"
    )


def _insert_axis(g: Any, axis: int) -> Any:
    shape = list(np.shape(raw(g)))
    shape.insert(len(shape) + 1 + axis if axis < 0 else axis, 1)
    return g.reshape(tuple(shape))


def matmul(a: Any, b: Any) -> Any:
    """Matrix product with ``np.matmul`` semantics (1-D, 2-D and batched N-D)."""
    if np.ndim(raw(a)) == 0 or np.ndim(raw(b)) == 0:
        raise GateError(
            f"gate 'matmul': operands must have at least one dimension, got shapes "
            f"{np.shape(raw(a))} and {np.shape(raw(b))} (use * for scalars)"
        )
    return MatMul.apply(a, b)


def dot(a: Any, b: Any) -> Any:
    """``np.dot`` for 0-D, 1-D and 2-D operands (use ``matmul`` for batched arrays)."""
    a_nd, b_nd = np.ndim(raw(a)), np.ndim(raw(b))
    if a_nd == 0 or b_nd == 0:
        from .arithmetic import Mul
        from .broadcast import apply_elementwise

        return apply_elementwise(Mul, a, b)
    if a_nd > 2 or b_nd > 2:
        raise GateError(
            f"gate 'dot': operands of {a_nd} and {b_nd} dimensions; dot takes up to 2-D, use "
            "matmul for batched products"
        )
    return matmul(a, b)
