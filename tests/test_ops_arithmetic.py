"""Arithmetic gates on tensors (+ - * / ** and unary -): values, gradients and second derivatives
against PyTorch with broadcasting, float32/float64 and edge values; NumPy arrays and Python numbers
on either side of every operator; gradcheck."""

import operator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import (
    arrays,
    broadcastable_pairs,
    compare,
    compare_second_order,
    dtypes,
    shapes,
)

import chainrule as cr
from chainrule.ops import arithmetic as ar

BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}
# the right operand's domain: division and a variable exponent need a positive one
RIGHT_DOMAIN = {"add": "real", "sub": "real", "mul": "real", "div": "positive", "pow": "real"}
LEFT_DOMAIN = {"add": "real", "sub": "real", "mul": "real", "div": "real", "pow": "positive"}


@st.composite
def binary_case(draw, name):
    dtype = draw(dtypes())
    sa, sb = draw(broadcastable_pairs())
    large = name in ("add", "sub", "mul")
    a = draw(arrays(dtype, sa, LEFT_DOMAIN[name], large=large))
    b = draw(arrays(dtype, sb, RIGHT_DOMAIN[name], large=large))
    return a, b


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_tensor_tensor_matches_torch(name, data):
    a, b = data.draw(binary_case(name))
    op = BINARY[name]
    compare(op, op, a, b)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_with_numpy_constant_on_either_side(name, data):
    a, b = data.draw(binary_case(name))
    op = BINARY[name]
    compare(lambda x: op(x, b), lambda x: op(x, torch.from_numpy(b)), a)
    compare(lambda y: op(a, y), lambda y: op(torch.from_numpy(a), y), b)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("number", [2, 0.5, -1.5, np.float64(3.0), np.int64(2)])
@given(dtype=dtypes(), shape=shapes())
def test_binary_with_python_or_numpy_number_on_either_side(name, number, dtype, shape):
    x = np.linspace(0.5, 2.0, int(np.prod(shape)), dtype=dtype).reshape(shape)
    op = BINARY[name]
    plain = number.item() if isinstance(number, np.generic) else number
    compare(lambda t: op(t, number), lambda t: op(t, plain), x)
    if name == "pow" and plain < 0:
        return  # a negative base to a tensor power is nan; covered by the tensor-tensor test
    compare(lambda t: op(abs(number), t), lambda t: op(abs(plain), t), x)


@given(dtype=dtypes(), shape=shapes(), data=st.data())
def test_neg_and_pos(dtype, shape, data):
    x = data.draw(arrays(dtype, shape, large=True))
    compare(lambda t: -t, lambda t: -t, x)
    t = cr.tensor(x, requires_grad=True)
    assert +t is t


@pytest.mark.parametrize("c", [0, 1, 2, 3, -1, 0.5, -2.5])
@given(dtype=dtypes(), shape=shapes(), data=st.data())
def test_pow_constant_exponent(c, dtype, shape, data):
    domain = "positive" if isinstance(c, float) or c < 0 else "real"
    x = data.draw(arrays(dtype, shape, domain))
    compare(lambda t: t**c, lambda t: t**c, x)


def test_pow_at_zero_follows_torch():
    base = np.array([0.0, 0.0, 0.0, 2.0])
    exponent = np.array([0.0, 1.0, 2.5, 0.0])
    compare(operator.pow, operator.pow, base, exponent)
    compare(lambda t: t**0, lambda t: t**0, np.zeros(3))


def test_division_by_zero_gives_inf_like_torch():
    with np.errstate(divide="ignore", invalid="ignore"):
        compare(operator.truediv, operator.truediv, np.array([1.0, -1.0, 0.0]), np.zeros(3))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_second_derivatives(name, rng):
    op = BINARY[name]
    a = rng.uniform(0.5, 2.0, (2, 3))
    b = rng.uniform(0.5, 2.0, (3,))
    compare_second_order(op, op, a, b)
    compare_second_order(lambda x: op(x, b), lambda x: op(x, torch.from_numpy(b)), a)


@pytest.mark.parametrize("c", [2, 3, -1, 0.5])
def test_pow_constant_second_derivative(c, rng):
    x = rng.uniform(0.5, 2.0, (4,))
    compare_second_order(lambda t: t**c, lambda t: t**c, x)
    compare_second_order(lambda t: -t * 3 + 1, lambda t: -t * 3 + 1, x)
    compare_second_order(lambda t: 1 / t, lambda t: 1 / t, x)  # the reciprocal gate
    compare_second_order(
        lambda t: (t / 2) ** 3 + 2 / t - t * t / 1.5,
        lambda t: (t / 2) ** 3 + 2 / t - t * t / 1.5,
        x,
    )


@given(dtype=dtypes(), shape=shapes(), data=st.data())
def test_reciprocal_matches_torch(dtype, shape, data):
    x = data.draw(arrays(dtype, shape, "positive"))
    compare(lambda t: 1 / t, lambda t: 1 / t, x)
    compare(lambda t: 1.0 / (-t), lambda t: 1.0 / (-t), x)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name, rng):
    a = rng.uniform(0.5, 2.0, (2, 3))
    b = rng.uniform(0.5, 2.0, (1, 3))
    assert cr.gradcheck(BINARY[name], a, b)


def test_scalar_gates_gradcheck(rng):
    x = rng.uniform(0.5, 2.0, (3,))
    assert cr.gradcheck(lambda t: 2.5 - t * 3 + 1 / t - t / 4 + 2**t, x)


def test_operators_record_the_notes_constant_gates():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert (x + 1).gate is ar.Translate
    assert (3 * x).gate is ar.Scale
    assert (1 / x).gate is ar.Reciprocal
    assert (x**2).gate is ar.PowConst
    assert (-x).gate is ar.Neg


def test_float32_stays_float32_with_numpy_scalars():
    x = cr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (x * np.float64(2) + np.float64(1)) / np.float64(3) - np.float64(1) + np.float64(2) ** x
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_int_tensor_arithmetic_follows_numpy():
    i = cr.arange(4)
    assert (i + 1).dtype == np.int64
    assert (i / 2).dtype == np.float64
    assert not (i * 2.5).requires_grad
