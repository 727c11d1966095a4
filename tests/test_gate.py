"""Gate: user-defined gates are first-class (save_for_backward, saved_tensors, apply, options),
and a gate declared or used wrongly gets an error that names it."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import gradients


class Cube(cr.Gate):
    """x**3 with local gradient 3 x**2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (3 * x * x * grad,)


class Affine(cr.Gate):
    """a * x + b for constants a, b given as keyword options."""

    symbol = "ax+b"

    @staticmethod
    def forward(ctx, x, *, a, b):
        return a * x + b

    @staticmethod
    def backward(ctx, grad):
        return (ctx.options["a"] * grad,)


def test_custom_gate_returns_a_value_and_backpropagates():
    x = cr.Value(2.0)
    y = Cube.apply(x)
    assert isinstance(y, cr.Value) and y.data == 8.0
    assert y.gate is Cube and y.inputs == (x,)
    assert y.saved_tensors == (2.0,)
    (y * 2).backward()
    assert x.grad == 2 * 3 * 4.0


def test_custom_gate_name_and_symbol_default_to_the_class_name():
    assert (Cube.name, Cube.symbol) == ("cube", "cube")
    assert (Affine.name, Affine.symbol) == ("affine", "ax+b")


def test_custom_gate_composes_with_built_in_gates_and_agrees_with_pow():
    x1, x2 = cr.Value(-1.3), cr.Value(-1.3)
    (Cube.apply(x1).tanh() + x1).backward()
    (x2**3).tanh().__add__(x2).backward()
    assert math.isclose(x1.grad, x2.grad, rel_tol=1e-15)


def test_keyword_options_are_constants_of_the_gate():
    x = cr.Value(3.0)
    y = Affine.apply(x, a=2.0, b=1.0)
    assert y.data == 7.0 and y.options == {"a": 2.0, "b": 1.0}
    y.backward()
    assert x.grad == 2.0


def test_custom_gate_on_plain_numbers_just_computes():
    assert Cube.apply(3.0) == 27.0
    assert Affine.apply(1.0, a=2.0, b=0.5) == 2.5


def test_custom_gate_over_tensors():
    x = cr.tensor([1.0, -2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 12.0])


def test_number_inputs_become_constant_wires():
    class Mul3(cr.Gate):
        @staticmethod
        def forward(ctx, x, y, z):
            ctx.save_for_backward(x, y, z)
            return x * y * z

        @staticmethod
        def backward(ctx, grad):
            x, y, z = ctx.saved_tensors
            assert ctx.needs_input_grad == (True, False, True)
            return grad * y * z, None, grad * x * y

    x, z = cr.Value(2.0), cr.Value(5.0)
    out = Mul3.apply(x, 3, z)
    constant = out.inputs[1]
    assert isinstance(constant, cr.Value) and not constant.requires_grad and constant.data == 3.0
    out.backward()
    assert (x.grad, z.grad) == (15.0, 6.0)


def test_a_none_gradient_means_no_gradient_for_that_input():
    class FirstOnly(cr.Gate):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    x, y = cr.Value(1.0), cr.Value(2.0)
    FirstOnly.apply(x, y).backward()
    assert (x.grad, y.grad) == (1.0, 0.0)
    assert gradients(FirstOnly.apply(x, y), [y]) == (0.0,)


@pytest.mark.parametrize("result", [lambda g: [g], lambda g: g])
def test_a_single_gradient_may_be_a_bare_value_or_a_list(result):
    class Twice(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return result(2 * grad)

    x = cr.Value(1.0)
    Twice.apply(x).backward()
    assert x.grad == 2.0


@pytest.mark.parametrize("returned", [(), (1.0, 1.0, 1.0)])
def test_backward_with_the_wrong_number_of_gradients_names_the_gate(returned):
    class Lopsided(cr.Gate):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return returned

    out = Lopsided.apply(cr.Value(1.0), cr.Value(2.0))
    with pytest.raises(
        cr.GateError,
        match=rf"gate 'lopsided': backward returned {len(returned)} "
        r"gradient\(s\) but the gate has 2 input\(s\)",
    ):
        out.backward()


@pytest.mark.parametrize("missing", ["forward", "backward"])
def test_a_gate_missing_forward_or_backward_is_refused_at_definition(missing):
    methods = {
        "forward": staticmethod(lambda ctx, x: x),
        "backward": staticmethod(lambda ctx, g: (g,)),
    }
    del methods[missing]
    message = rf"gate 'halfgate' must define a static method '{missing}'"
    with pytest.raises(TypeError, match=message):
        type("HalfGate", (cr.Gate,), methods)


def test_an_abstract_gate_base_may_leave_them_out():
    class Base(cr.Gate, abstract=True):
        pattern = "shared"

    class Concrete(Base):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    assert (Concrete.name, Concrete.symbol, Concrete.pattern) == ("concrete", "concrete", "shared")
    assert Concrete.apply(cr.Value(4.0)).data == 4.0


def test_mixing_values_and_tensors_is_refused_naming_the_gate():
    with pytest.raises(cr.GateError, match="gate 'cube': cannot mix Value and Tensor inputs"):
        Cube.apply(cr.Value(1.0), cr.tensor([1.0]))


def test_a_gate_producing_a_non_number_for_a_value_names_the_gate():
    class Vector(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            return [x, x]

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    with pytest.raises(cr.GateError, match=r"gate 'vector' produced \[1\.0, 1\.0\]"):
        Vector.apply(cr.Value(1.0))


def test_saved_values_are_refused_after_release_with_a_hint():
    x = cr.Value(2.0)
    y = Cube.apply(x)
    y.backward()
    with pytest.raises(RuntimeError, match=r"gate 'cube'.*retain_graph=True"):
        _ = y.saved_tensors


def test_gates_apply_under_no_grad_record_nothing():
    x = cr.Value(2.0)
    with cr.no_grad():
        y = Cube.apply(x)
    assert y.data == 8.0 and y.is_leaf and not y.requires_grad and y._saved is None


def test_custom_gate_written_in_operators_supports_second_derivatives():
    class Square(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return (2 * x * grad,)

    x = cr.Value(3.0)
    (g,) = gradients(Square.apply(x) * x, [x], create_graph=True)  # d(x^3) = 3x^2
    assert g.data == 27.0
    g.backward()
    assert x.grad == 18.0
