"""Gates without a gradient: comparisons and their logical combinations.

Backward rules route gradients with masks (relu passes it where ``x > 0``, max routes it to the
larger input, clip where ``lo <= x <= hi``). Written with these gates, a rule's masks are part of
the circuit its backward records under ``create_graph``, so a reader of the recorded backward
(``cr.stage``, explain) sees them as gates rather than as arrays frozen at recording time. On
plain numbers and arrays they simply compute (``greater(x, 0)`` is ``x > 0``).

A mask is recorded whenever one of its inputs is part of a circuit (it requires grad, or is
itself a mask gate's output), but its output never requires grad: no gradient flows through it.
Combine masks with these gates (``logical_and``, ``logical_not``) so that the result stays
recorded, and apply them by multiplying a gradient (``grad * greater(x, 0)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Node, is_grad_enabled
from ..gate import Gate, _Scratch, record_nodes

__all__ = [
    "Equal",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "LogicalAnd",
    "LogicalNot",
    "NoGradGate",
    "equal",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "logical_and",
    "logical_not",
]


class NoGradGate(Gate, abstract=True):
    """A gate whose output has no gradient: recorded (its gate and inputs kept, for readers of
    the circuit) but never requiring grad, so the backward sweep never enters it."""

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Any:
        nodes = [i for i in inputs if isinstance(i, Node)]
        if not nodes:
            return cls.forward(_Scratch(), *inputs, **options)
        front = nodes[0]._front
        traced = is_grad_enabled() and any(n.requires_grad or n._gate is not None for n in nodes)
        inputs = tuple(i if isinstance(i, Node) else front._constant(i) for i in inputs)
        out = record_nodes(cls, front, inputs, traced, options)
        out.requires_grad = False
        return out

    @staticmethod
    def backward(ctx, grad):
        return (None,) * len(ctx.inputs)


class Greater(NoGradGate):
    """x > y, elementwise."""

    symbol = ">"
    forward_code = "{0} > {1}"

    @staticmethod
    def forward(ctx, x, y):
        return x > y


class GreaterEqual(NoGradGate):
    """x >= y, elementwise."""

    name = "greater_equal"
    symbol = ">="
    forward_code = "{0} >= {1}"

    @staticmethod
    def forward(ctx, x, y):
        return x >= y


class Less(NoGradGate):
    """x < y, elementwise."""

    symbol = "<"
    forward_code = "{0} < {1}"

    @staticmethod
    def forward(ctx, x, y):
        return x < y


class LessEqual(NoGradGate):
    """x <= y, elementwise."""

    name = "less_equal"
    symbol = "<="
    forward_code = "{0} <= {1}"

    @staticmethod
    def forward(ctx, x, y):
        return x <= y


class Equal(NoGradGate):
    """x == y, elementwise."""

    symbol = "=="
    forward_code = "{0} == {1}"

    @staticmethod
    def forward(ctx, x, y):
        return x == y


class LogicalAnd(NoGradGate):
    """Both masks hold."""

    name = "logical_and"
    symbol = "and"
    forward_code = "{0} & {1}"

    @staticmethod
    def forward(ctx, x, y):
        return x & y if isinstance(x, np.ndarray) or isinstance(y, np.ndarray) else x and y


class LogicalNot(NoGradGate):
    """The mask negated."""

    name = "logical_not"
    symbol = "not"
    forward_code = "~{0}"

    @staticmethod
    def forward(ctx, x):
        return np.logical_not(x) if isinstance(x, np.ndarray) else not x


def greater(x: Any, y: Any) -> Any:
    """x > y as a mask (a gate without gradient when x or y is part of a circuit)."""
    return Greater.apply(x, y)


def greater_equal(x: Any, y: Any) -> Any:
    """x >= y as a mask."""
    return GreaterEqual.apply(x, y)


def less(x: Any, y: Any) -> Any:
    """x < y as a mask."""
    return Less.apply(x, y)


def less_equal(x: Any, y: Any) -> Any:
    """x <= y as a mask."""
    return LessEqual.apply(x, y)


def equal(x: Any, y: Any) -> Any:
    """x == y as a mask."""
    return Equal.apply(x, y)


def logical_and(x: Any, y: Any) -> Any:
    """Where both masks hold."""
    return LogicalAnd.apply(x, y)


def logical_not(x: Any) -> Any:
    """Where the mask does not hold."""
    return LogicalNot.apply(x)
