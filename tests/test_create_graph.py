"""create_graph is correct by construction: derivatives flowing through other arguments and
closures are recorded (mixed partials and closures agree with torch.autograd.grad), a user's gate
that saves a derived value gets its exact second derivative or a clear refusal, and a backward
that leaves chainrule under create_graph is refused by name."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine import check_gradients

FUNCTIONS = {
    "x*y*y": lambda x, y: x * y * y,
    "tanh(x*y)+y": lambda x, y: (x * y).tanh() + y,
    "exp(x)*sigmoid(y)": lambda x, y: x.exp() * y.sigmoid(),
    "x*x*y-y/x": lambda x, y: x * x * y - y / x,
}

points = st.floats(0.3, 2.0)


def test_the_issue_examples():
    assert cr.grad(cr.grad(lambda x, y: x * y * y, 1))(2.0, 3.0) == 6.0
    assert cr.grad(lambda x: x * cr.grad(lambda y: x * y)(2.0))(1.0) == 2.0


def _torch_mixed(f, a, b):
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    (gy,) = torch.autograd.grad(f(x, y), y, create_graph=True)
    (gxy,) = torch.autograd.grad(gy, x)
    return gxy.item()


@given(st.sampled_from(sorted(FUNCTIONS)), points, points)
def test_mixed_partials_match_torch(name, a, b):
    f = FUNCTIONS[name]
    mine = cr.grad(cr.grad(f, 1), 0)(a, b)
    assert np.isclose(float(mine), _torch_mixed(f, a, b), rtol=1e-10, atol=1e-12)


@given(st.sampled_from(sorted(FUNCTIONS)), points, points)
def test_derivatives_through_closures_match_torch(name, a, b):
    f = FUNCTIONS[name]
    mine = cr.grad(lambda x: x * cr.grad(lambda y: f(x, y))(b))(a)
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    (gy,) = torch.autograd.grad(f(x, y), y, create_graph=True)
    (theirs,) = torch.autograd.grad(x * gy, x)
    assert np.isclose(float(mine), theirs.item(), rtol=1e-10, atol=1e-12)


def test_an_inner_transformation_alone_still_returns_arrays():
    g = cr.grad(lambda y: y * y)(3.0)
    assert isinstance(g, np.ndarray) and g == 6.0


class Cube(cr.Gate):
    """The README's pattern: forward saves a derived value for backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(3 * x * x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return (grad * slope,)


def test_a_user_gate_saving_a_derived_value_has_the_exact_second_derivative():
    assert cr.grad(cr.grad(lambda x: Cube.apply(x).sum()))(np.array(2.0)) == 12.0
    h = cr.hessian(lambda x: Cube.apply(x).sum())(np.array([2.0, -1.0]))
    np.testing.assert_array_equal(h, [[12.0, 0.0], [0.0, -6.0]])
    a = cr.Value(2.0)
    (g,) = cr.engine.gradients(Cube.apply(a), [a], create_graph=True)
    g.backward()
    assert g.data == 12.0 and a.grad == 12.0


def test_a_derived_value_that_forward_cannot_rebuild_is_refused_by_name():
    class Opaque(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            raw = x.data if isinstance(x, cr.Tensor) else x
            ctx.save_for_backward(np.cos(raw))
            return np.sin(raw)

        @staticmethod
        def backward(ctx, grad):
            (c,) = ctx.saved_tensors
            return (grad * c,)

    assert np.isclose(cr.grad(lambda x: Opaque.apply(x).sum())(np.array(1.0)), np.cos(1.0))
    with pytest.raises(cr.GateError, match="gate 'opaque' saved a value derived from its inputs"):
        cr.grad(cr.grad(lambda x: Opaque.apply(x).sum()))(np.array(1.0))


def test_a_backward_returning_raw_arrays_under_create_graph_is_refused_by_name():
    class Raw(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            raw = x.data if isinstance(x, cr.Tensor) else x
            return (
                np.asarray(2 * raw)
                * np.asarray(grad.data if isinstance(grad, cr.Tensor) else grad),
            )

    assert cr.grad(lambda x: Raw.apply(x).sum())(np.array(3.0)) == 6.0
    with pytest.raises(
        cr.GateError, match="gate 'raw': under create_graph backward returned a raw"
    ):
        cr.grad(cr.grad(lambda x: Raw.apply(x).sum()))(np.array(3.0))


def test_check_gradients_is_a_reusable_function():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * cr.tensor([3.0, 4.0])
    grads = (np.ones(2), None)
    assert check_gradients(y, grads) == grads
    with pytest.raises(
        cr.GateError, match="gate 'mul': under create_graph.*raw ndarray for input 0"
    ):
        check_gradients(y, grads, create_graph=True)
    with pytest.raises(cr.GateError, match="returned 1 gradient"):
        check_gradients(y, np.ones(2))
