"""Arithmetic gates: add, sub, mul, div, neg, pow, and the notes' constant gates
(translate ``x + c``, scale ``c * x``, reciprocal ``1/x``).

Each gate states its local rule only; the engine multiplies by the upstream gradient's flow.
Inputs of a binary gate have the same shape (the tensor front end broadcasts explicitly first).
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import GateError
from ..gate import Gate
from .mask import equal, greater_equal, logical_and


class Add(Gate):
    """x + y: both local gradients are 1, so the gate hands its upstream gradient to each input."""

    # staged code (see chainrule.stage): the forward computation as one NumPy expression
    forward_code = "{0} + {1}"
    stage_name = "{0}p{1}"

    symbol = "+"
    pattern = "add distributes"

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Gate):
    """x - y: local gradients 1 and -1."""

    forward_code = "{0} - {1}"
    stage_name = "{0}m{1}"

    symbol = "-"

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Gate):
    """x * y: local gradients (y, x), each input gets the other one times upstream."""

    forward_code = "{0} * {1}"

    symbol = "*"
    pattern = "mul swaps"

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        in_x, in_y = ctx.inputs
        return (y * grad if in_x.requires_grad else None, x * grad if in_y.requires_grad else None)


class Div(Gate):
    """x / y: local gradients 1/y and -x/y²."""

    forward_code = "{0} / {1}"
    symbol = "/"

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        try:
            return x / y
        except ZeroDivisionError:
            raise GateError(f"gate 'div': division by zero ({x!r} / {y!r})") from None

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = grad / y
        return gx, (-gx * x / y if ctx.needs_input_grad[1] else None)


class Neg(Gate):
    """-x, the notes' ``*-1`` gate: local gradient -1."""

    forward_code = "-{0}"
    stage_name = "neg{0}"

    symbol = "*-1"

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


class Translate(Gate):
    """x + c for a constant c (the notes' ``+1`` gate): local gradient 1."""

    forward_code = "{0} + {c}"

    symbol = "+"  # a diagram writes it with its constant: "+1"

    @staticmethod
    def forward(ctx, x, *, c):
        return x + c

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


class Scale(Gate):
    """c * x for a constant c (the notes' ``*a`` gate): local gradient c."""

    forward_code = "{c} * {0}"

    symbol = "*"  # written with its constant: "*2", "*-1"

    @staticmethod
    def forward(ctx, x, *, c):
        return x * c

    @staticmethod
    def backward(ctx, grad):
        return (ctx.options["c"] * grad,)


class Reciprocal(Gate):
    """1 / x (the notes' ``1/x`` gate): local gradient -1/x²."""

    forward_code = "1.0 / {0}"
    stage_name = "inv{0}"

    symbol = "1/x"

    @staticmethod
    def forward(ctx, x):
        try:
            out = 1.0 / x
        except ZeroDivisionError:
            raise GateError(f"gate 'reciprocal': 1/x of x = {x!r}") from None
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (-(out * out) * grad,)


class PowConst(Gate):
    """x ** c for a constant exponent c: local gradient c * x**(c-1) (0 when c == 0, as in
    PyTorch, even at x == 0)."""

    forward_code = "{0} ** {c}"

    @staticmethod
    def stage_name(options):
        """How staged code names the output: ``xpysqr`` for a square."""
        return "{0}sqr" if options["c"] == 2 else None

    name = "pow"
    symbol = "**"  # written with its constant exponent: "**2"

    @staticmethod
    def forward(ctx, x, *, c):
        ctx.save_for_backward(x)
        if type(x) is float:
            try:
                out = x**c
            except ZeroDivisionError:
                raise GateError(f"gate 'pow': {x!r} ** {c!r} divides by zero") from None
            if type(out) is complex:
                raise GateError(f"gate 'pow': {x!r} ** {c!r} is not a real number")
            return out
        return x**c

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        c = ctx.options["c"]
        if c == 0:
            return (0.0 * grad,)
        if c == 2:
            return (x * 2 * grad,)  # x ** 1 would be a needless copy
        try:
            return (c * x ** (c - 1) * grad,)
        except ZeroDivisionError:
            msg = f"gate 'pow': the gradient of x ** {c!r} at x = 0 is infinite"
            raise GateError(msg) from None


class Pow(Gate):
    """x ** y with both operands variables: local gradients y*x**(y-1) and x**y * log(x).

    As in PyTorch, the base's gradient is 0 where y == 0 and the exponent's gradient is 0 where
    x == 0 and y >= 0 (instead of the nan of 0 * inf).
    """

    forward_code = "np.power({0}, {1})"

    symbol = "**"

    @staticmethod
    def forward(ctx, x, y):
        out = _scalar_power(x, y) if type(x) is float and type(y) is float else np.power(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        from .elementwise import log, where

        x, y, out = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad
        if type(x) is float and type(y) is float:  # plain floats (create_graph gets Values)
            return _scalar_power_grads(ctx, grad, x, y, need_x, need_y)
        gx = gy = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_x:
                gx = where(equal(y, 0), 0.0, y * x ** (y - 1) * grad)
            if need_y:
                zero = logical_and(equal(x, 0), greater_equal(y, 0))
                gy = where(zero, 0.0, out * log(where(zero, 1.0, x)) * grad)
        return gx, gy


def _scalar_power(x: float, y: float) -> float:
    """x ** y for Python floats, with the gate's own error where it is not a finite real."""
    try:
        out = x**y
    except (ZeroDivisionError, OverflowError):
        raise GateError(f"gate 'pow': {x!r} ** {y!r} is not a finite number") from None
    if type(out) is complex:
        raise GateError(f"gate 'pow': {x!r} ** {y!r} is not a real number")
    return out


def _scalar_power_grads(ctx, grad, x: float, y: float, need_x: bool, need_y: bool) -> tuple:
    """Pow's gradients for Python floats: errors name the gate where a gradient is undefined."""
    gx = gy = None
    if need_x:
        if y == 0:
            gx = grad * 0.0
        elif x == 0 and y < 1:
            raise GateError(f"gate 'pow': the gradient of x ** {y!r} at x = 0 is infinite")
        else:
            gx = grad * y * _scalar_power(x, y - 1)
    if need_y:
        if x < 0:
            raise GateError(
                f"gate 'pow': the gradient with respect to the exponent needs a base >= 0, "
                f"got {x!r}"
            )
        gy = grad * 0.0 if x == 0 and y >= 0 else grad * ctx.saved_tensors[2] * math.log(x)
    return gx, gy
