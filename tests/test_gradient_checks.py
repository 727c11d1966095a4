"""What crosses a gate's boundary is checked: a user gate's gradients must match their inputs'
shapes and dtypes, and complex values are refused everywhere (constants and options included)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import Gate
from chainrule.nn import functional as F


def _gate_returning(make_grad):
    class Odd(Gate):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return (make_grad(grad),)

    return Odd


def test_a_gradient_of_the_wrong_shape_is_refused_naming_gate_slot_and_shapes():
    Odd = _gate_returning(lambda g: np.ones(10))
    x = cr.tensor(np.ones((5, 5)), requires_grad=True)
    y = Odd.apply(x).sum()
    with pytest.raises(
        cr.GateError, match=r"gate 'odd'.*input 0 with shape \(10,\), expected \(5, 5\)"
    ):
        y.backward()
    assert x.grad is None


def test_a_gradient_of_the_wrong_dtype_is_refused():
    Odd = _gate_returning(lambda g: g.astype(np.float64))
    x = cr.tensor(np.ones(3), dtype=np.float32, requires_grad=True)
    with pytest.raises(cr.GateError, match="dtype float64, expected float32"):
        Odd.apply(x).sum().backward()


def test_a_complex_gradient_is_refused():
    Odd = _gate_returning(lambda g: g * 1j)
    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(cr.GateError, match="gate 'odd'.*complex"):
        Odd.apply(x).sum().backward()


def test_a_value_gate_returning_a_non_number_is_refused():
    Odd = _gate_returning(lambda g: "one")
    with pytest.raises(cr.GateError, match="gate 'odd'.*'one', expected a real number"):
        Odd.apply(cr.Value(2.0)).backward()


def test_the_checks_also_run_when_readers_sweep():
    Odd = _gate_returning(lambda g: np.ones(2))
    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(cr.GateError, match="gate 'odd'"):
        cr.trace(Odd.apply(x).sum()).backward_steps()


def test_a_user_forward_returning_complex_values_is_refused():
    class Root(Gate):
        @staticmethod
        def forward(ctx, x):
            return np.sqrt(x.astype(complex))

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    with pytest.raises(cr.GateError, match="gate 'root': forward returned complex"):
        Root.apply(cr.tensor([-1.0], requires_grad=True))


@pytest.mark.parametrize(
    "build",
    [
        lambda x: x * 1j,
        lambda x: 1j + x,
        lambda x: x - np.complex128(2),
        lambda x: x * np.full(3, 1j),
        lambda x: F.elu(x, 1j),
        lambda x: cr.where(x.data > 0, x, 1j),
    ],
    ids=["x*1j", "1j+x", "x-complex128", "x*complex-array", "elu-alpha", "where"],
)
def test_complex_constants_are_refused_everywhere(build):
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    with pytest.raises(cr.GateError, match="complex"):
        build(x)


def test_a_complex_option_is_refused_naming_the_gate():
    class Shift(Gate):
        @staticmethod
        def forward(ctx, x, c):
            return x + c

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    with pytest.raises(cr.GateError, match="gate 'shift': option c=1j is complex"):
        Shift.apply(cr.tensor([1.0], requires_grad=True), c=1j)


def test_complex_values_are_refused_in_the_scalar_front_end():
    with pytest.raises(TypeError):
        cr.Value(2.0) * 1j
    with pytest.raises(TypeError):
        cr.Value(1j)
