"""Value: the scalar front end. A Python float in a circuit, with the lecture's gates as operators
and methods (``x * y``, ``x + 1``, ``v.exp()``, ``v.sigmoid()``...)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .engine import NO_OPTIONS as _NO_OPTIONS
from .engine import GateError, Node, _GradMode
from .gate import record_nodes
from .ops import arithmetic as ar
from .ops import elementwise as el


def _number(other: Any) -> float | None:
    """``other`` as a float when it is a real number (not a Value), else None."""
    if type(other) is float:
        return other
    if isinstance(other, (int, float)):
        return float(other)
    if isinstance(other, np.number) and not isinstance(other, np.complexfloating):
        return float(other)
    return None


class Value(Node):
    """A scalar in a circuit. ``.data`` and ``.grad`` are Python floats.

    ``Value(data, name=None, requires_grad=True)``; leaves accumulate ``.grad`` across backward
    calls (reset with ``zero_grad()``); intermediate values keep no gradient unless
    ``retain_grad()`` was called.
    """

    __slots__ = ()
    _data_type = float

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool = True) -> None:
        number = data.data if isinstance(data, Value) else _number(data)
        if number is None:
            raise TypeError(f"Value needs a real number, got {type(data).__name__}: {data!r}")
        self._init_node(number, 0.0, bool(requires_grad))
        if name is not None:
            self.name = name

    # --- front-end hooks used by the engine and gates ------------------------------------------
    @classmethod
    def _coerce(cls, data: Any, gate: Any) -> float:
        number = _number(data)
        if number is None:
            raise GateError(f"gate '{gate.name}' produced {data!r}, not a real number")
        return number

    @classmethod
    def _constant(cls, data: Any) -> Value:
        return cls(data, requires_grad=False)

    def _default_seed(self) -> float:
        return 1.0

    def _check_seed(self, grad: Any) -> Any:
        if isinstance(grad, Value):
            return grad
        number = _number(grad)
        if number is None or not math.isfinite(number):
            raise GateError(f"backward(): the seed gradient must be a finite number, got {grad!r}")
        return number

    def _accumulate(self, grad: Any) -> None:
        if type(grad) is not float and not isinstance(grad, Value):
            grad = float(grad)  # a gate may hand back a NumPy scalar; .grad stays a float
        old = self.grad
        self.grad = grad if old is None else old + grad

    def _zero_grad_value(self) -> float:
        return 0.0

    def _zeros_like(self) -> float:
        return 0.0

    def _gradient_problem(self, grad: Any) -> str | None:
        if isinstance(grad, Value) or _number(grad) is not None:
            return None
        return f"{grad!r}, expected a real number"

    # --- recording helpers ---------------------------------------------------------------------
    def _unary(self, gate: Any, options: dict = _NO_OPTIONS) -> Value:
        return record_nodes(gate, Value, (self,), self.requires_grad and _GradMode.enabled, options)

    def _binary(self, gate: Any, other: Value) -> Value:
        recording = (self.requires_grad or other.requires_grad) and _GradMode.enabled
        return record_nodes(gate, Value, (self, other), recording, _NO_OPTIONS)

    # --- arithmetic ----------------------------------------------------------------------------
    # __add__, __mul__ and relu are the scalar engine's hottest paths: they record directly
    def __add__(self, other: Any) -> Value:
        if isinstance(other, Value):
            recording = (self.requires_grad or other.requires_grad) and _GradMode.enabled
            return record_nodes(ar.Add, Value, (self, other), recording, _NO_OPTIONS)
        c = _number(other)
        return NotImplemented if c is None else self._unary(ar.Translate, {"c": c})

    __radd__ = __add__

    def __sub__(self, other: Any) -> Value:
        if isinstance(other, Value):
            return self._binary(ar.Sub, other)
        c = _number(other)
        return NotImplemented if c is None else self._unary(ar.Translate, {"c": -c})

    def __rsub__(self, other: Any) -> Value:
        c = _number(other)
        return NotImplemented if c is None else (-self)._unary(ar.Translate, {"c": c})

    def __mul__(self, other: Any) -> Value:
        if isinstance(other, Value):
            recording = (self.requires_grad or other.requires_grad) and _GradMode.enabled
            return record_nodes(ar.Mul, Value, (self, other), recording, _NO_OPTIONS)
        c = _number(other)
        return NotImplemented if c is None else self._unary(ar.Scale, {"c": c})

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Value:
        if isinstance(other, Value):
            return self._binary(ar.Div, other)
        c = _number(other)
        return NotImplemented if c is None else self._binary(ar.Div, Value._constant(c))

    def __rtruediv__(self, other: Any) -> Value:
        c = _number(other)
        if c is None:
            return NotImplemented
        if c == 1.0:
            return self._unary(ar.Reciprocal)
        return Value._constant(c)._binary(ar.Div, self)

    def __pow__(self, other: Any) -> Value:
        if isinstance(other, Value):
            return self._binary(ar.Pow, other)
        c = _number(other)
        return NotImplemented if c is None else self._unary(ar.PowConst, {"c": c})

    def __rpow__(self, other: Any) -> Value:
        c = _number(other)
        return NotImplemented if c is None else Value._constant(c)._binary(ar.Pow, self)

    def __neg__(self) -> Value:
        return self._unary(ar.Neg)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return self._unary(el.Abs)

    # --- unary gates as methods ----------------------------------------------------------------
    def exp(self) -> Value:
        """e**self (one gate)."""
        return self._unary(el.Exp)

    def log(self) -> Value:
        """Natural log (one gate); raises GateError for a non-positive value."""
        return self._unary(el.Log)

    def sqrt(self) -> Value:
        """Square root (one gate)."""
        return self._unary(el.Sqrt)

    def tanh(self) -> Value:
        """tanh (one gate)."""
        return self._unary(el.Tanh)

    def sigmoid(self) -> Value:
        """The sigmoid as a single gate with local gradient (1 - s) s."""
        return self._unary(el.Sigmoid)

    def relu(self) -> Value:
        """max(0, self) (one gate)."""
        return record_nodes(
            el.Relu, Value, (self,), self.requires_grad and _GradMode.enabled, _NO_OPTIONS
        )

    def abs(self) -> Value:
        """|self| (one gate)."""
        return self._unary(el.Abs)

    # --- comparisons are plain bools, not gates ------------------------------------------------
    def _other(self, other: Any) -> float:
        return other.data if isinstance(other, Value) else other

    def __lt__(self, other: Any) -> bool:
        return self.data < self._other(other)

    def __le__(self, other: Any) -> bool:
        return self.data <= self._other(other)

    def __gt__(self, other: Any) -> bool:
        return self.data > self._other(other)

    def __ge__(self, other: Any) -> bool:
        return self.data >= self._other(other)

    def __eq__(self, other: Any) -> bool:
        return self.data == self._other(other)

    def __ne__(self, other: Any) -> bool:
        return self.data != self._other(other)

    __hash__ = Node.__hash__

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        grad = "None" if self.grad is None else f"{self.grad:.6g}"
        return f"Value({name}data={self.data:.6g}, grad={grad})"


Value._front = Value
