"""More elementwise gates with NumPy's names: exponentials and logarithms in other bases and
their accurate forms near 0 (``expm1``, ``log1p``), ``square``, the piecewise-constant ``sign``,
``floor`` and ``ceil`` (gradient 0, as PyTorch), and the two-input ``arctan2``, ``hypot`` and
``logaddexp`` (broadcasting)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..gate import Gate
from .broadcast import apply_elementwise
from .elementwise import exp
from .trig import _apply, unary_gate

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _zero(x: Any, out: Any) -> float:
    return 0.0


Sign = unary_gate("sign", np.sign, _zero, "Sign (-1, 0 or 1): gradient 0.")
Floor = unary_gate("floor", np.floor, _zero, "Round down: gradient 0.")
Ceil = unary_gate("ceil", np.ceil, _zero, "Round up: gradient 0.")
Square = unary_gate("square", np.square, lambda x, out: 2.0 * x, "x²: local gradient 2x.", "x²")
Expm1 = unary_gate("expm1", np.expm1, lambda x, out: out + 1.0, "e**x - 1: local gradient e**x.")
Log1p = unary_gate(
    "log1p", np.log1p, lambda x, out: 1.0 / (x + 1.0), "log(1 + x): local gradient 1/(1+x)."
)
Log2 = unary_gate(
    "log2", np.log2, lambda x, out: 1.0 / (x * _LN2), "Base-2 logarithm: local gradient 1/(x ln 2)."
)
Log10 = unary_gate(
    "log10",
    np.log10,
    lambda x, out: 1.0 / (x * _LN10),
    "Base-10 logarithm: local gradient 1/(x ln 10).",
)
Exp2 = unary_gate("exp2", np.exp2, lambda x, out: out * _LN2, "2**x: local gradient 2**x ln 2.")

sign, floor, ceil, square = _apply(Sign), _apply(Floor), _apply(Ceil), _apply(Square)
expm1, log1p, log2, log10, exp2 = (
    _apply(Expm1),
    _apply(Log1p),
    _apply(Log2),
    _apply(Log10),
    _apply(Exp2),
)


class Arctan2(Gate):
    """The angle of the point (x, y) as ``arctan2(y, x)``: local gradients x/(x²+y²) for y and
    -y/(x²+y²) for x."""

    elementwise = True
    forward_code = "np.arctan2({0}, {1})"

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved_tensors
        scale = grad / (x * x + y * y)
        return scale * x, -(scale * y)


class Hypot(Gate):
    """√(x² + y²): local gradients x/out and y/out."""

    elementwise = True
    forward_code = "np.hypot({0}, {1})"

    @staticmethod
    def forward(ctx, x, y):
        out = np.hypot(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y, out = ctx.saved_tensors
        scale = grad / out
        return scale * x, scale * y


class Logaddexp(Gate):
    """log(e**x + e**y), computed stably: local gradients e**(x - out) and e**(y - out) (the
    two shares of a softmax over the pair)."""

    elementwise = True
    forward_code = "np.logaddexp({0}, {1})"

    @staticmethod
    def forward(ctx, x, y):
        out = np.logaddexp(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y, out = ctx.saved_tensors
        return grad * exp(x - out), grad * exp(y - out)


def arctan2(y: Any, x: Any) -> Any:
    """The angle of (x, y) in radians, elementwise with broadcasting (NumPy's ``arctan2``)."""
    return apply_elementwise(Arctan2, y, x)


def hypot(x: Any, y: Any) -> Any:
    """√(x² + y²), elementwise with broadcasting (NumPy's ``hypot``)."""
    return apply_elementwise(Hypot, x, y)


def logaddexp(x: Any, y: Any) -> Any:
    """log(e**x + e**y), stable, elementwise with broadcasting (NumPy's ``logaddexp``)."""
    return apply_elementwise(Logaddexp, x, y)
