"""The worked circuits of the CS231n backprop notes, built with chainrule's gates.

Each function takes the circuit's inputs as keyword numbers (the notes' values by default) and
returns the output Value with its inputs and key intermediate wires named as in the notes, so that
explanations, diagrams, staged code and tests can all reuse them.
"""

from __future__ import annotations

from collections.abc import Callable

from .ops import maximum
from .value import Value

__all__ = ["EXAMPLES", "chain", "neuron", "patterns", "staged"]


def _named(value: Value, name: str) -> Value:
    value.name = name
    return value


def chain(x: float = -2.0, y: float = 5.0, z: float = -4.0) -> Value:
    """f = (x + y) z, the notes' first circuit: q = x + y, f = q * z."""
    x, y, z = Value(x, name="x"), Value(y, name="y"), Value(z, name="z")
    q = _named(x + y, "q")
    return _named(q * z, "f")


def neuron(
    w0: float = 2.0, x0: float = -1.0, w1: float = -3.0, x1: float = -2.0, w2: float = -3.0
) -> Value:
    """The 2-D sigmoid neuron from primitive gates: f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))."""
    w0, x0 = Value(w0, name="w0"), Value(x0, name="x0")
    w1, x1 = Value(w1, name="w1"), Value(x1, name="x1")
    w2 = Value(w2, name="w2")
    dot = _named(w0 * x0 + w1 * x1 + w2, "dot")
    return _named(1 / (1 + (-dot).exp()), "f")


def staged(x: float = 3.0, y: float = -4.0) -> Value:
    """The staged example f = (x + σ(y)) / (σ(x) + (x + y)²), one named stage per line."""
    x, y = Value(x, name="x"), Value(y, name="y")
    sigy = _named(y.sigmoid(), "sigy")
    num = _named(x + sigy, "num")
    sigx = _named(x.sigmoid(), "sigx")
    xpy = _named(x + y, "xpy")
    xpysqr = _named(xpy**2, "xpysqr")
    den = _named(sigx + xpysqr, "den")
    invden = _named(1 / den, "invden")
    return _named(num * invden, "f")


def patterns(x: float = 3.0, y: float = -4.0, z: float = 2.0, w: float = -1.0) -> Value:
    """f = 2 (x y + max(z, w)): add distributes, max routes, mul swaps."""
    x, y = Value(x, name="x"), Value(y, name="y")
    z, w = Value(z, name="z"), Value(w, name="w")
    return _named((x * y + maximum(z, w)) * 2, "f")


EXAMPLES: dict[str, Callable[..., Value]] = {
    "neuron": neuron,
    "staged": staged,
    "patterns": patterns,
    "chain": chain,
}
"""The examples by name, as ``chainrule explain --example NAME`` knows them."""
