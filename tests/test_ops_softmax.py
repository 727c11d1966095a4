"""Softmax and log-softmax gates: values and gradients against PyTorch along every axis, float32
and float64, numerically stable at ±1e4; second derivatives; gradcheck; bad axis."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import arrays, compare, compare_second_order, distinct, dtypes, shapes

import chainrule as cr

GATES = {
    "softmax": (cr.softmax, torch.softmax),
    "log_softmax": (cr.log_softmax, torch.log_softmax),
}


@pytest.mark.parametrize("name", sorted(GATES))
@given(shape=shapes(min_dims=1), dtype=dtypes(), data=st.data())
def test_matches_torch_along_any_axis(name, shape, dtype, data):
    mine, theirs = GATES[name]
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(arrays(dtype, shape, large=True))
    out = compare(lambda t: mine(t, axis), lambda t: theirs(t, axis), x, scale=10.0)
    assert np.all(np.isfinite(out.data))


@pytest.mark.parametrize("name", sorted(GATES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_plus_minus_1e4(name, dtype):
    mine, theirs = GATES[name]
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4 - 1, 1e4 - 2]], dtype=dtype)
    out = compare(lambda t: mine(t, -1), lambda t: theirs(t, -1), x)
    assert np.all(np.isfinite(out.data))
    if name == "softmax":
        np.testing.assert_allclose(out.data.sum(axis=-1), 1.0, rtol=1e-6)


def test_methods_default_to_the_last_axis(rng):
    x = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(cr.tensor(x).softmax().data, cr.softmax(cr.tensor(x), -1).data)
    np.testing.assert_array_equal(
        cr.tensor(x).log_softmax(0).data, cr.log_softmax(cr.tensor(x), axis=0).data
    )


@pytest.mark.parametrize("name", sorted(GATES))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_second_derivatives_and_gradcheck(name, axis, rng):
    mine, theirs = GATES[name]
    x = distinct(rng, (3, 4))
    compare_second_order(lambda t: mine(t, axis), lambda t: theirs(t, axis), x)
    compare_second_order(lambda t: mine(t * t, axis), lambda t: theirs(t * t, axis), x)
    assert cr.gradcheck(lambda t: mine(t, axis), x)


def test_softmax_of_a_vector_sums_to_one_and_its_gradient_is_orthogonal_to_ones(rng):
    x = cr.tensor(rng.standard_normal(5), requires_grad=True)
    s = cr.softmax(x)
    s.backward(np.ones(5))
    np.testing.assert_allclose(s.data.sum(), 1.0)
    np.testing.assert_allclose(x.grad, np.zeros(5), atol=1e-15)


@pytest.mark.parametrize("name", sorted(GATES))
def test_bad_axis_names_the_gate(name):
    with pytest.raises(cr.GateError, match=rf"gate '{name}'.*axis 2 is out of range"):
        GATES[name][0](cr.ones(2, 3, requires_grad=True), 2)
