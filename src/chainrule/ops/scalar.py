"""A neuron's weighted sum as one gate: ``b + w0*x0 + w1*x1 + ...``.

The notes make the point that any differentiable expression whose local gradient is easy to state
can be a single gate (the sigmoid is their example). A scalar neuron's pre-activation is such an
expression: built from ``*`` and ``+`` it costs ``2n`` gates, and in a scalar network per-gate
bookkeeping dominates the run time. As one gate it is one node with ``2n + 1`` input slots whose
local gradients are the notes' "mul swaps" rule applied to every pair: ``x_i`` for ``w_i``,
``w_i`` for ``x_i``, and 1 for ``b``.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from operator import attrgetter, mul
from typing import Any

from ..engine import NO_OPTIONS as _NO_OPTIONS
from ..engine import GateError, _GradMode
from ..gate import Gate, record_nodes

__all__ = ["LinearCombination", "linear_combination"]


class LinearCombination(Gate):
    """``b + Σ w_i x_i`` over the slots ``(w_0..w_{n-1}, x_0..x_{n-1}, b)``.

    Local gradients: ``x_i`` on ``w_i``, ``w_i`` on ``x_i``, 1 on ``b``. The forward value is
    Python's ``sum(w_i * x_i ..., b)``: the products added to ``b`` from left to right, the order
    of micrograd's neuron. Slots of equal-shape arrays work elementwise.
    """

    @staticmethod
    def forward_code(site):
        args = site.args
        n = len(args) >> 1
        terms = [args[-1], *(f"{w} * {x}" for w, x in zip(args[:n], args[n:-1]))]
        return site.format(" + ".join(terms))

    name = "linear_combination"
    symbol = "w·x+b"
    pattern = "mul swaps"

    @staticmethod
    def forward(ctx, *slots):
        ctx.save_for_backward(*slots)
        n = len(slots) >> 1
        out = sum(map(mul, slots[:n], slots[n:-1]), slots[-1])
        if type(out) is not float and getattr(ctx, "_data_type", None) is float:
            # every slot of a Value's gate holds a float: an array means a Tensor got in
            raise GateError("gate 'linear_combination': cannot mix Value and Tensor inputs")
        return out

    @staticmethod
    def backward(ctx, grad):
        slots = ctx.saved_tensors
        n = len(slots) >> 1
        g = repeat(grad)
        return (*map(mul, g, slots[n:-1]), *map(mul, g, slots[:n]), grad)


def linear_combination(weights: Iterable[Any], inputs: Iterable[Any], bias: Any = 0.0) -> Any:
    """``bias + Σ weights[i] * inputs[i]`` as a single gate (a neuron's pre-activation).

    Any slot may be a Value (or an equal-shape Tensor) or a plain number (a constant). Gradients
    are the same as for the expression built from ``*`` and ``+``; a Value used in several slots
    (``linear_combination(p, p)`` for a sum of squares) gets their sum, as at any fork.
    """
    if not isinstance(weights, (list, tuple)):
        weights = tuple(weights)
    if not isinstance(inputs, (list, tuple)):
        inputs = tuple(inputs)
    if len(weights) != len(inputs):
        raise GateError(
            f"gate 'linear_combination': {len(weights)} weight(s) but {len(inputs)} input(s); "
            "give one weight per input"
        )
    slots = (*weights, *inputs, bias)
    front = getattr(type(bias), "_front", None)
    if front is not None and front._data_type is float:
        # the scalar hot path skips Gate.apply's per-slot type check: a number among the slots
        # fails the attribute lookups (and takes the general path, which wraps constants), and
        # the gate's forward refuses a Tensor
        try:
            recording = _GradMode.enabled and any(map(_requires_grad, slots))
            return record_nodes(LinearCombination, front, slots, recording, _NO_OPTIONS)
        except AttributeError:
            pass
    return LinearCombination.apply(*slots)


_requires_grad = attrgetter("requires_grad")
