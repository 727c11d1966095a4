"""The functional API (grad with argnums int/tuple, value_and_grad, vjp, jacobian, hessian, nested
grad(grad(f))) against PyTorch's autograd.functional and double backward; argument errors."""

import numpy as np
import pytest
import torch
from torch.autograd import functional as tf

import chainrule as cr


def f_cr(x, y):
    return ((x @ y).tanh() ** 2).sum() + (x * x).sum() * y.sum()


def f_torch(x, y):
    return ((x @ y).tanh() ** 2).sum() + (x * x).sum() * y.sum()


@pytest.fixture
def xy(rng):
    return rng.standard_normal((2, 3)), rng.standard_normal((3, 2))


def _torch_grads(fn, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    return [g.numpy() for g in torch.autograd.grad(fn(*ts), ts)]


def test_grad_with_int_and_tuple_argnums(xy):
    x, y = xy
    gx, gy = _torch_grads(f_torch, x, y)
    np.testing.assert_allclose(cr.grad(f_cr)(x, y), gx, rtol=1e-12)
    np.testing.assert_allclose(cr.grad(f_cr, argnums=1)(x, y), gy, rtol=1e-12)
    np.testing.assert_allclose(cr.grad(f_cr, argnums=-1)(x, y), gy, rtol=1e-12)
    both = cr.grad(f_cr, argnums=(0, 1))(x, y)
    assert isinstance(both, tuple) and len(both) == 2
    np.testing.assert_allclose(both[0], gx, rtol=1e-12)
    np.testing.assert_allclose(both[1], gy, rtol=1e-12)


def test_grad_returns_arrays_and_leaves_the_arguments_alone(xy):
    x, y = xy
    before = x.copy()
    g = cr.grad(f_cr)(x, y)
    assert isinstance(g, np.ndarray) and g.shape == x.shape
    np.testing.assert_array_equal(x, before)
    t = cr.tensor(x)
    cr.grad(f_cr)(t, y)
    assert t.grad is None


def test_grad_of_a_function_that_ignores_its_argument():
    np.testing.assert_array_equal(
        cr.grad(lambda x, y: (y * 2).sum(), argnums=0)(np.ones(2), np.ones(3)), np.zeros(2)
    )
    np.testing.assert_array_equal(cr.grad(lambda x: cr.tensor(1.0))(np.ones(2)), np.zeros(2))
    np.testing.assert_array_equal(cr.grad(lambda x: 1.0)(np.ones(2)), np.zeros(2))


def test_grad_of_an_int_argument_is_taken_in_float64():
    g = cr.grad(lambda x: (x * x).sum())(np.array([1, 2]))
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_grad_keeps_float32():
    g = cr.grad(lambda x: (x * x).sum())(np.ones(2, dtype=np.float32))
    assert g.dtype == np.float32


def test_second_derivatives_keep_float32():
    def f(t):
        return ((t / 2) ** 3 + t.exp() * 3).sum()

    second = cr.grad(lambda t: cr.grad(f)(t).sum())(np.ones(2, dtype=np.float32))
    assert second.dtype == np.float32
    np.testing.assert_allclose(second, 0.75 + 3 * np.e, rtol=1e-6)
    h = cr.hessian(f)(np.ones(2, dtype=np.float32))
    assert h.dtype == np.float32


def test_value_and_grad(xy):
    x, y = xy
    value, g = cr.value_and_grad(f_cr, argnums=(0, 1))(x, y)
    expected = f_torch(torch.tensor(x), torch.tensor(y)).item()
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    for mine, theirs in zip(g, _torch_grads(f_torch, x, y)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_vjp_against_torch(rng):
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((2,))

    def g(x, w):
        return (x @ w).sigmoid() * x.sum(axis=1)

    out, pullback = cr.vjp(g, a, b)
    cot = rng.standard_normal(3)
    t_out, t_vjp = tf.vjp(g, (torch.tensor(a), torch.tensor(b)), torch.tensor(cot))
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-12)
    mine = pullback(cot)
    assert isinstance(mine, tuple) and len(mine) == 2
    for m, t in zip(mine, t_vjp):
        np.testing.assert_allclose(m, t.numpy(), rtol=1e-12)
    again = pullback(2 * cot)  # the circuit is kept for further products
    np.testing.assert_allclose(again[0], 2 * t_vjp[0].numpy(), rtol=1e-12)
    with pytest.raises(cr.GateError, match=r"vjp: cotangent has shape \(2,\).*\(3,\)"):
        pullback(np.ones(2))


@pytest.mark.parametrize("in_shape", [(3,), (2, 2)])
def test_jacobian_has_shape_out_plus_in(in_shape, rng):
    x = rng.standard_normal(in_shape)
    w = rng.standard_normal((4,) + in_shape)

    def g(t, weights=w):
        return (weights * t).reshape(4, -1).sum(axis=1).tanh().reshape(2, 2) * 3

    def gt(t):
        return (torch.tensor(w) * t).reshape(4, -1).sum(dim=1).tanh().reshape(2, 2) * 3

    jac = cr.jacobian(g)(x)
    assert jac.shape == (2, 2) + in_shape
    np.testing.assert_allclose(jac, tf.jacobian(gt, torch.tensor(x)).numpy(), rtol=1e-12)


def test_jacobian_of_a_second_argument_and_of_a_constant_output(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    jac = cr.jacobian(lambda x, y: x * y.exp(), argnums=1)(a, b)
    np.testing.assert_allclose(jac, np.diag(a * np.exp(b)))
    np.testing.assert_array_equal(cr.jacobian(lambda x: cr.tensor([1.0, 2.0]))(a), np.zeros((2, 3)))


def test_hessian_of_the_usage_example():
    h = cr.hessian(lambda x: (x**3).sum())(np.ones(3))
    np.testing.assert_array_equal(h, np.diag([6.0, 6.0, 6.0]))


@pytest.mark.parametrize(
    "name,mine,theirs",
    [
        (
            "softmax",
            lambda x: (cr.softmax(x) * cr.arange(4.0)).sum(),
            lambda x: (torch.softmax(x, -1) * torch.arange(4.0, dtype=x.dtype)).sum(),
        ),
        ("logsumexp", lambda x: cr.logsumexp(x * x), lambda x: torch.logsumexp(x * x, 0)),
        (
            "mixed",
            lambda x: (x.sigmoid() * x.tanh() / (1 + x * x)).sum() + x.max(),
            lambda x: (x.sigmoid() * x.tanh() / (1 + x * x)).sum() + x.max(),
        ),
        (
            "matrix",
            lambda x: (x.reshape(2, 2) @ x.reshape(2, 2).T).exp().sum(),
            lambda x: (x.reshape(2, 2) @ x.reshape(2, 2).T).exp().sum(),
        ),
    ],
)
def test_hessian_against_torch(name, mine, theirs, rng):
    x = rng.standard_normal(4)
    expected = tf.hessian(theirs, torch.tensor(x)).numpy()
    np.testing.assert_allclose(cr.hessian(mine)(x), expected, rtol=1e-10, atol=1e-12)


def test_nested_grad_against_torch_double_backward(rng):
    x = rng.standard_normal(3)

    def f(t):
        return (t.tanh() * t.exp()).sum()

    def ft(t):
        return (t.tanh() * t.exp()).sum()

    second = cr.grad(lambda t: cr.grad(f)(t).sum())(x)
    tt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(ft(tt), tt, create_graph=True)
    (expected,) = torch.autograd.grad(g.sum(), tt)
    np.testing.assert_allclose(second, expected.numpy(), rtol=1e-12)


def test_third_derivative_of_a_scalar_function():
    def cube(t):
        return (t**3).sum()

    d3 = cr.grad(lambda t: cr.grad(lambda u: cr.grad(cube)(u).sum())(t).sum())(np.array([2.0]))
    np.testing.assert_allclose(d3, [6.0])


def test_functional_errors():
    with pytest.raises(cr.GateError, match="argnums 2 is out of range for a function of 1"):
        cr.grad(lambda x: x.sum(), argnums=2)(np.ones(2))
    with pytest.raises(cr.GateError, match=r"grad: the function must return one number.*\(2,\)"):
        cr.grad(lambda x: x * 2)(np.ones(2))
    with pytest.raises(cr.GateError, match="jacobian: the function must return a Tensor.*str"):
        cr.jacobian(lambda x: "ones")(np.ones(2))
    with pytest.raises(cr.GateError, match="vjp: the function must return a Tensor.*Value"):
        cr.vjp(lambda x: cr.Value(1.0), np.ones(2))
