"""Elementwise gates: exp, log, sqrt, tanh, sigmoid (as one gate), relu, abs, clip, and the
routers maximum/minimum/where.

Scalars (Python floats) compute with ``math`` and raise a :class:`GateError` naming the gate on a
domain error; arrays follow NumPy's IEEE results (inf/nan with a warning).

Tie rules, the same as PyTorch's: ``maximum``/``minimum`` split the gradient equally between
tied inputs; relu's and abs' gradients at exactly 0 are 0; clip passes the gradient where
``lo <= x <= hi`` (bounds included).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._util import raw
from .broadcast import apply_elementwise, broadcast_to
from .mask import equal, greater, greater_equal, less, less_equal, logical_and


def _scalar_domain(gate: str, fn, x: float, ok: bool, need: str) -> float:
    if not ok:
        raise GateError(f"gate '{gate}': input must be {need}, got {x!r}")
    try:
        return fn(x)
    except OverflowError:
        raise GateError(f"gate '{gate}': result overflows for input {x!r}") from None


class Exp(Gate):
    """e**x: its local gradient is its own output."""

    forward_code = "np.exp({0})"
    stage_name = "exp{0}"

    @staticmethod
    def forward(ctx, x):
        out = _scalar_domain("exp", math.exp, x, True, "") if type(x) is float else np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (out * grad,)


class Log(Gate):
    """Natural log: local gradient 1/x."""

    forward_code = "np.log({0})"
    stage_name = "log{0}"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        if type(x) is float:
            return _scalar_domain("log", math.log, x, x > 0, "positive")
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad / x,)


class Sqrt(Gate):
    """Square root: local gradient 1 / (2 sqrt(x))."""

    forward_code = "np.sqrt({0})"
    stage_name = "sqrt{0}"

    symbol = "√"

    @staticmethod
    def forward(ctx, x):
        if type(x) is float:
            out = _scalar_domain("sqrt", math.sqrt, x, x >= 0, "non-negative")
        else:
            out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        try:
            return (grad / (out * 2),)
        except ZeroDivisionError:
            raise GateError("gate 'sqrt': the gradient of sqrt at 0 is infinite") from None


class Tanh(Gate):
    """Hyperbolic tangent: local gradient 1 - tanh(x)²."""

    forward_code = "np.tanh({0})"
    stage_name = "tanh{0}"

    @staticmethod
    def forward(ctx, x):
        out = math.tanh(x) if type(x) is float else np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return ((1 - out * out) * grad,)


# e**x where overflow to inf is expected (sigmoid's far negative tail gives 1 / inf = 0), without
# the warning. errstate as a decorator builds its error state per call (thread-safe) but spares
# constructing a context manager each time: about 0.4 us less per call at 16x16.
_exp_ignoring_overflow = np.errstate(over="ignore")(np.exp)


class Sigmoid(Gate):
    """The logistic function as one gate: local gradient (1 - s) * s, from its output s alone."""

    forward_code = "1 / (1 + np.exp(-{0}))"
    stage_name = "sig{0}"

    symbol = "σ"

    @staticmethod
    def forward(ctx, x):
        if type(x) is float:
            if x >= 0:
                out = 1.0 / (1.0 + math.exp(-x))
            else:
                e = math.exp(x)
                out = e / (1.0 + e)
        elif type(x) is np.ndarray and x.ndim and x.dtype.kind == "f":
            out = np.negative(x)  # 1 / (1 + e**-x) in one buffer: the same bits, one allocation
            _exp_ignoring_overflow(out, out=out)
            out += 1.0  # a float, not an int: NumPy converts it faster (same bits)
            np.reciprocal(out, out=out)  # IEEE 1.0 / out, cheaper than np.divide(1, out)
        else:
            out = 1 / (1 + _exp_ignoring_overflow(-x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return ((1 - out) * out * grad,)


class Relu(Gate):
    """max(0, x): passes the gradient where x > 0 (and not at 0)."""

    forward_code = "np.maximum({0}, 0)"
    stage_name = "relu{0}"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        if type(x) is float:
            return x if x > 0 else 0.0
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if type(x) is float:  # the scalar front end's hot path
            return (grad if x > 0 else grad * 0.0,)
        return (greater(x, 0) * grad,)  # a bool mask multiplies as 0/1 in grad's dtype


class Abs(Gate):
    """|x|: local gradient sign(x) (0 at 0)."""

    forward_code = "np.abs({0})"
    stage_name = "abs{0}"

    symbol = "|x|"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return abs(x)

    @staticmethod
    def backward(ctx, grad):
        from .special import sign  # special builds on this module

        (x,) = ctx.saved_tensors
        return (sign(x) * grad,)


class Clip(Gate):
    """x limited to [lo, hi] (either may be None): gradient passes where lo <= x <= hi."""

    forward_code = "np.clip({0}, {lo}, {hi})"

    @staticmethod
    def forward(ctx, x, *, lo=None, hi=None):
        if lo is not None and hi is not None and lo > hi:
            raise GateError(f"gate 'clip': lower bound {lo!r} is above upper bound {hi!r}")
        ctx.save_for_backward(x)
        if type(x) is float:
            return min(max(x, -math.inf if lo is None else lo), math.inf if hi is None else hi)
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.options.get("lo"), ctx.options.get("hi")
        if lo is None:
            inside = less_equal(x, math.inf if hi is None else hi)
        elif hi is None:
            inside = greater_equal(x, lo)
        else:
            inside = logical_and(greater_equal(x, lo), less_equal(x, hi))
        return (inside * grad,)


class Maximum(Gate):
    """The max gate: routes the whole gradient to the larger input (split equally on a tie)."""

    forward_code = "np.maximum({0}, {1})"

    symbol = "max"
    pattern = "max routes"

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        if type(x) is float and type(y) is float:
            return x if x >= y else y
        return np.maximum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        half = equal(x, y) * grad * 0.5
        return greater(x, y) * grad + half, greater(y, x) * grad + half


class Minimum(Gate):
    """The min gate: routes the whole gradient to the smaller input (split equally on a tie)."""

    forward_code = "np.minimum({0}, {1})"

    symbol = "min"
    pattern = "min routes"

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        if type(x) is float and type(y) is float:
            return x if x <= y else y
        return np.minimum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        half = equal(x, y) * grad * 0.5
        return less(x, y) * grad + half, less(y, x) * grad + half


class Where(Gate):
    """where(cond, x, y): routes the gradient to x where cond holds, to y elsewhere. The
    condition is an input without gradient (a constant, or a mask gate's output)."""

    forward_code = "np.where({0}, {1}, {2})"

    symbol = "where"
    pattern = "where routes"

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.save_for_backward(cond)
        return np.where(cond, x, y)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        return None, where(cond, grad, 0.0), where(cond, 0.0, grad)


def exp(x: Any) -> Any:
    """e**x, elementwise."""
    return Exp.apply(x)


def log(x: Any) -> Any:
    """Natural logarithm, elementwise."""
    return Log.apply(x)


def sqrt(x: Any) -> Any:
    """Square root, elementwise."""
    return Sqrt.apply(x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent, elementwise."""
    return Tanh.apply(x)


def sigmoid(x: Any) -> Any:
    """Logistic sigmoid 1 / (1 + e**-x) as a single gate."""
    return Sigmoid.apply(x)


def relu(x: Any) -> Any:
    """max(0, x), elementwise."""
    return Relu.apply(x)


def absolute(x: Any) -> Any:
    """|x|, elementwise."""
    return Abs.apply(x)


def clip(x: Any, lo: Any = None, hi: Any = None) -> Any:
    """x limited to [lo, hi] (NumPy's clip; the bounds are numbers or None)."""
    for bound in (lo, hi):
        if bound is not None and (
            isinstance(bound, (bool, np.bool_)) or not isinstance(bound, (int, float, np.number))
        ):
            raise GateError(f"gate 'clip': bounds must be numbers or None, got {bound!r}")
    return Clip.apply(x, lo=lo, hi=hi)


def maximum(x: Any, y: Any) -> Any:
    """Elementwise max of two inputs (broadcasting), the notes' max gate."""
    return apply_elementwise(Maximum, x, y)


def minimum(x: Any, y: Any) -> Any:
    """Elementwise min of two inputs (broadcasting)."""
    return apply_elementwise(Minimum, x, y)


def where(cond: Any, x: Any, y: Any) -> Any:
    """x where ``cond`` holds, else y; differentiable in x and y. ``cond`` is a boolean array or
    a mask (``cr.greater(x, 0)``), which staged code then computes rather than freezes."""
    if not isinstance(cond, Node):
        cond = np.asarray(cond, dtype=bool)
    shapes = (np.shape(raw(cond)), np.shape(raw(x)), np.shape(raw(y)))
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise GateError(
            "gate 'where': condition, x and y of shapes {} and {} and {} cannot be broadcast "
            "together".format(*shapes)
        ) from None
    x = broadcast_to(x, shape) if _differentiable(x) else x
    y = broadcast_to(y, shape) if _differentiable(y) else y
    return Where.apply(cond, x, y)


def _differentiable(value: Any) -> bool:
    return getattr(value, "requires_grad", False)
