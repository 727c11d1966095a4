"""Trigonometric and hyperbolic gates (NumPy's names), and the factory that writes a one-input
elementwise gate from its NumPy function and its local derivative.

Each derivative is written with chainrule's gates and operators (``cos(x)``, ``1 - x * x``), so
it runs on raw arrays in an ordinary backward and records a circuit under ``create_graph``:
second derivatives are exact. A Python float outside a function's domain (``arcsin(2.0)``) raises
a :class:`GateError` naming the gate; arrays follow NumPy (nan with a warning).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import GateError
from ..gate import Gate
from .elementwise import sqrt


def unary_gate(
    name: str, function: Callable, derivative: Callable, doc: str, symbol: str | None = None
) -> type[Gate]:
    """A gate computing ``function`` elementwise whose local gradient is ``derivative(x, out)``
    (written in differentiable operations)."""

    def forward(ctx, x):
        if type(x) is float:
            with np.errstate(all="ignore"):
                out = float(function(x))
            if not np.isfinite(out) and np.isfinite(x):
                raise GateError(f"gate '{name}': input {x!r} is outside its domain")
        else:
            out = function(x)
        ctx.save_for_backward(x, out)
        return out

    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return (grad * derivative(x, out),)

    attributes = {
        "__doc__": doc,
        "__module__": __name__,
        "name": name,
        "symbol": symbol or name,
        "elementwise": True,
        "forward_code": f"np.{function.__name__}({{0}})",
        "forward": staticmethod(forward),
        "backward": staticmethod(backward),
    }
    return type(name.capitalize(), (Gate,), attributes)


def _apply(gate: type[Gate]) -> Callable[[Any], Any]:
    def apply(x: Any) -> Any:
        return gate.apply(x)

    apply.__name__ = apply.__qualname__ = gate.name
    apply.__doc__ = f"{gate.__doc__.split(':')[0]}, elementwise (NumPy's ``{gate.name}``)."
    return apply


Sin = unary_gate("sin", np.sin, lambda x, out: cos(x), "Sine: local gradient cos(x).")
Cos = unary_gate("cos", np.cos, lambda x, out: -sin(x), "Cosine: local gradient -sin(x).")
Tan = unary_gate(
    "tan", np.tan, lambda x, out: 1.0 + out * out, "Tangent: local gradient 1 + tan²(x)."
)
Arcsin = unary_gate(
    "arcsin",
    np.arcsin,
    lambda x, out: 1.0 / sqrt(1.0 - x * x),
    "Arcsine: local gradient 1/√(1-x²).",
)
Arccos = unary_gate(
    "arccos",
    np.arccos,
    lambda x, out: -1.0 / sqrt(1.0 - x * x),
    "Arccosine: local gradient -1/√(1-x²).",
)
Arctan = unary_gate(
    "arctan", np.arctan, lambda x, out: 1.0 / (1.0 + x * x), "Arctangent: local gradient 1/(1+x²)."
)
Sinh = unary_gate(
    "sinh", np.sinh, lambda x, out: cosh(x), "Hyperbolic sine: local gradient cosh(x)."
)
Cosh = unary_gate(
    "cosh", np.cosh, lambda x, out: sinh(x), "Hyperbolic cosine: local gradient sinh(x)."
)
Arcsinh = unary_gate(
    "arcsinh",
    np.arcsinh,
    lambda x, out: 1.0 / sqrt(x * x + 1.0),
    "Inverse hyperbolic sine: local gradient 1/√(x²+1).",
)
Arctanh = unary_gate(
    "arctanh",
    np.arctanh,
    lambda x, out: 1.0 / (1.0 - x * x),
    "Inverse hyperbolic tangent: local gradient 1/(1-x²).",
)

sin, cos, tan = _apply(Sin), _apply(Cos), _apply(Tan)
arcsin, arccos, arctan = _apply(Arcsin), _apply(Arccos), _apply(Arctan)
sinh, cosh, arcsinh, arctanh = _apply(Sinh), _apply(Cosh), _apply(Arcsinh), _apply(Arctanh)
