"""Reduction gates (sum mean max min logsumexp) over axis None/int/tuple/negative with keepdims:
values, gradients (max/min share ties equally, like torch.amax) and second derivatives against
PyTorch; stability of logsumexp at ±1e4; bad axes; gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import arrays, compare, compare_second_order, distinct, dtypes, shapes

import chainrule as cr

TORCH = {
    "sum": torch.sum,
    "mean": torch.mean,
    "max": torch.amax,
    "min": torch.amin,
    "logsumexp": torch.logsumexp,
}


def _mine(name, axis, keepdims):
    return lambda x: getattr(x, name)(axis=axis, keepdims=keepdims)


def _theirs(name, axis, keepdims):
    fn = TORCH[name]
    if axis is None:
        dims = None
    else:
        dims = axis
    if dims is None:
        if name == "logsumexp":
            return lambda t: fn(t, dim=tuple(range(t.ndim)), keepdim=keepdims)
        if keepdims:
            return lambda t: fn(t, dim=tuple(range(t.ndim)), keepdim=True)
        return lambda t: fn(t)
    return lambda t: fn(t, dim=dims, keepdim=keepdims)


@st.composite
def axis_case(draw):
    shape = draw(shapes(min_dims=1))
    ndim = len(shape)
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
    axis = draw(st.none() | single | several)
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", sorted(TORCH))
@given(case=axis_case(), dtype=dtypes(), data=st.data())
def test_reduction_matches_torch(name, case, dtype, data):
    shape, axis, keepdims = case
    # ties (repeated edge values) and large magnitudes are both drawn
    x = data.draw(arrays(dtype, shape, large=name != "mean"))
    scale = 10.0 if name == "logsumexp" else 1.0
    compare(_mine(name, axis, keepdims), _theirs(name, axis, keepdims), x, scale=scale)


@pytest.mark.parametrize("name", sorted(TORCH))
def test_reduction_functions_match_methods(name, rng):
    x = rng.standard_normal((2, 3))
    fn = getattr(cr, name)
    by_method = getattr(cr.tensor(x), name)(1)
    np.testing.assert_array_equal(fn(cr.tensor(x), axis=1).data, by_method.data)


def test_reduction_of_a_zero_dimensional_tensor():
    for name in TORCH:
        compare(_mine(name, None, False), _theirs(name, None, False), np.array(1.5))


def test_max_and_min_share_ties_equally():
    x = cr.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.zero_grad()
    x.min().backward()
    np.testing.assert_allclose(x.grad, [[1, 0, 0], [0, 0, 0]])


def test_logsumexp_is_stable_at_large_magnitudes():
    for x in (np.array([1e4, 1e4 - 1.0, -1e4]), np.array([-1e4, -1e4]), np.full((2, 2), 1e4)):
        out = compare(cr.logsumexp, lambda t: torch.logsumexp(t, dim=tuple(range(t.ndim))), x)
        assert np.all(np.isfinite(out.data))
    compare(
        lambda t: t.logsumexp(axis=0),
        lambda t: torch.logsumexp(t, dim=0),
        np.array([1e4, -1e4], dtype=np.float32),
    )


def test_logsumexp_of_minus_infinity_rows():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    out = cr.logsumexp(cr.tensor(x), axis=1)
    np.testing.assert_array_equal(out.data, [-np.inf, 0.0])


@pytest.mark.parametrize("name", sorted(TORCH))
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_reduction_second_derivatives_and_gradcheck(name, axis, keepdims, rng):
    x = distinct(rng, (2, 3, 2))
    mine, theirs = _mine(name, axis, keepdims), _theirs(name, axis, keepdims)
    # times x so that the second derivative of a linear reduction is not trivially zero
    compare_second_order(lambda t: mine(t * t), lambda t: theirs(t * t), x)
    compare_second_order(mine, theirs, x)
    assert cr.gradcheck(mine, x)


@pytest.mark.parametrize("name", sorted(TORCH))
def test_bad_axis_names_the_gate(name):
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(cr.GateError, match=rf"gate '{name}'.*axis 2 is out of range"):
        getattr(x, name)(axis=2)
    with pytest.raises(cr.GateError, match=rf"gate '{name}'.*repeated axis"):
        getattr(x, name)(axis=(1, -1))
    with pytest.raises(cr.GateError, match=rf"gate '{name}'.*axis must be an int"):
        getattr(x, name)(axis=1.5)
    assert x.grad is None


@pytest.mark.parametrize("name", ["max", "min"])
def test_extreme_of_an_empty_array_is_refused(name):
    with pytest.raises(cr.GateError, match=rf"gate '{name}'.*empty"):
        getattr(cr.zeros(0, 3, requires_grad=True), name)()


def test_mean_over_an_axis_keeps_float32():
    x = cr.tensor(np.ones((4, 5), dtype=np.float32), requires_grad=True)
    x.mean(axis=0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, np.full((4, 5), 0.25))
