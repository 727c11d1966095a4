"""Elementwise gates on tensors (exp log sqrt tanh sigmoid relu abs clip, the routers maximum,
minimum and where): values, gradients and second derivatives against PyTorch, float32/float64,
edge values (zeros, ties, large magnitudes) and the documented tie rules; gradcheck."""

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
    distinct,
    dtypes,
    shapes,
)

import chainrule as cr

# name: (chainrule, torch, domain, large magnitudes allowed)
UNARY = {
    "exp": (cr.exp, torch.exp, "real", False),
    "log": (cr.log, torch.log, "positive", False),
    "sqrt": (cr.sqrt, torch.sqrt, "positive", False),
    "tanh": (cr.tanh, torch.tanh, "real", True),
    "sigmoid": (cr.sigmoid, torch.sigmoid, "real", True),
    "relu": (cr.relu, torch.relu, "real", True),
    "abs": (cr.abs, torch.abs, "real", True),
    "clip": (lambda x: cr.clip(x, -1.0, 0.5), lambda x: torch.clip(x, -1.0, 0.5), "real", True),
    "clip_lo": (lambda x: x.clip(0.0), lambda x: x.clip(0.0), "real", True),
    "clip_hi": (lambda x: x.clip(hi=1.0), lambda x: x.clip(max=1.0), "real", True),
}
METHODS = ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs")


@pytest.mark.parametrize("name", sorted(UNARY))
@given(dtype=dtypes(), shape=shapes(), data=st.data())
def test_unary_matches_torch(name, dtype, shape, data):
    mine, theirs, domain, large = UNARY[name]
    x = data.draw(arrays(dtype, shape, domain, large=large))
    compare(mine, theirs, x)


@pytest.mark.parametrize("name", METHODS)
def test_unary_methods_are_the_same_gates(name, rng):
    x = rng.uniform(0.5, 2.0, (2, 3))
    method = getattr(cr.tensor(x, requires_grad=True), name)()
    function = getattr(cr, name)(cr.tensor(x, requires_grad=True))
    assert method.gate is function.gate
    np.testing.assert_array_equal(method.data, function.data)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_second_derivatives(name, rng):
    mine, theirs, domain, _ = UNARY[name]
    x = distinct(rng, (3, 4))
    if domain == "positive":
        x = np.abs(x) + 0.25
    compare_second_order(mine, theirs, x)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name, rng):
    mine, _, domain, _ = UNARY[name]
    x = distinct(rng, (2, 3))
    if domain == "positive":
        x = np.abs(x) + 0.25
    assert cr.gradcheck(mine, x)


def test_kinks_follow_the_documented_rule():
    x = np.array([-1.0, 0.0, 1.0, -1.0, 0.5, 2.0])
    compare(cr.relu, torch.relu, x)  # relu'(0) = 0
    compare(cr.abs, torch.abs, x)  # abs'(0) = 0
    compare(lambda t: t.clip(-1.0, 0.5), lambda t: t.clip(-1.0, 0.5), x)  # bounds pass
    t = cr.tensor(x, requires_grad=True)
    t.clip(-1.0, 0.5).sum().backward()
    np.testing.assert_array_equal(t.grad, [1, 1, 0, 1, 1, 0])


def test_large_inputs_stay_finite():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    out = compare(cr.sigmoid, torch.sigmoid, x)
    np.testing.assert_array_equal(out.data, [0.0, 0.0, 0.5, 1.0, 1.0])
    compare(cr.tanh, torch.tanh, x)
    compare(cr.sigmoid, torch.sigmoid, x.astype(np.float32))


# --- routers ----------------------------------------------------------------------------------
ROUTERS = {"maximum": (cr.maximum, torch.maximum), "minimum": (cr.minimum, torch.minimum)}


@st.composite
def router_case(draw):
    dtype = draw(dtypes())
    sa, sb = draw(broadcastable_pairs())
    # values from a tiny set so that ties are frequent
    tie_values = st.sampled_from([0.0, 1.0, -1.0, 1e4])
    from hypothesis.extra import numpy as hnp

    a = draw(hnp.arrays(dtype, sa, elements=tie_values) | arrays(dtype, sa, large=True))
    b = draw(hnp.arrays(dtype, sb, elements=tie_values) | arrays(dtype, sb, large=True))
    return a, b


@pytest.mark.parametrize("name", sorted(ROUTERS))
@given(case=router_case())
def test_routers_match_torch_including_ties(name, case):
    a, b = case
    mine, theirs = ROUTERS[name]
    compare(mine, theirs, a, b)
    compare(lambda x: mine(x, b), lambda x: theirs(x, torch.from_numpy(b)), a)
    compare(lambda y: mine(a, y), lambda y: theirs(torch.from_numpy(a), y), b)


def test_router_splits_a_tie_equally():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = cr.tensor([2.0, 2.0, 2.0], requires_grad=True)
    cr.maximum(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(y.grad, [1.0, 0.5, 0.0])


def test_router_with_a_python_number():
    x = np.array([-1.0, 0.0, 2.0])
    compare(lambda t: cr.maximum(t, 0.0), lambda t: torch.maximum(t, torch.zeros_like(t)), x)
    compare(lambda t: cr.minimum(1, t), lambda t: torch.minimum(torch.ones_like(t), t), x)


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_router_second_derivatives_and_gradcheck(name, rng):
    mine, theirs = ROUTERS[name]
    a, b = distinct(rng, (2, 3)), distinct(rng, (3,))
    compare_second_order(lambda x, y: mine(x, y) * x, lambda x, y: theirs(x, y) * x, a, b)
    assert cr.gradcheck(mine, a, b)


@st.composite
def where_case(draw):
    dtype = draw(dtypes())
    sa, sb = draw(broadcastable_pairs())
    shape = np.broadcast_shapes(sa, sb)
    cond = np.asarray(draw(arrays(np.float64, shape)) > 0)
    return cond, draw(arrays(dtype, sa, large=True)), draw(arrays(dtype, sb, large=True))


@given(case=where_case())
def test_where_matches_torch(case):
    cond, a, b = case
    tc = torch.from_numpy(cond)
    compare(lambda x, y: cr.where(cond, x, y), lambda x, y: torch.where(tc, x, y), a, b)
    compare(lambda x: cr.where(cond, x, 0.0), lambda x: torch.where(tc, x, 0.0), a)
    compare(lambda y: cr.where(cond, a, y), lambda y: torch.where(tc, torch.from_numpy(a), y), b)


def test_where_accepts_a_tensor_condition_and_routes(rng):
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    out = cr.where(x > 0, x, x * 10)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [1.0, -20.0, 3.0])
    np.testing.assert_array_equal(x.grad, [1.0, 10.0, 1.0])
    a, b = distinct(rng, (2, 3)), distinct(rng, (2, 3))
    cond = a > b
    compare_second_order(
        lambda x, y: cr.where(cond, x * x, y * x),
        lambda x, y: torch.where(torch.from_numpy(cond), x * x, y * x),
        a,
        b,
    )
    assert cr.gradcheck(lambda x, y: cr.where(cond, x, y), a, b)


def test_elementwise_errors_name_the_gate():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(cr.GateError, match=r"gate 'clip'.*lower bound 3.*upper bound 1"):
        x.clip(3, 1)
    with pytest.raises(cr.GateError, match=r"gate 'clip'.*bounds must be numbers.*\[0, 1\]"):
        x.clip([0, 1])
    with pytest.raises(cr.GateError, match=r"gate 'where'.*\(4,\).*\(2, 3\)"):
        cr.where(np.ones(4, bool), x, 0.0)
    with pytest.raises(cr.GateError, match=r"gate 'maximum'.*\(2, 3\) and \(4,\)"):
        cr.maximum(x, np.ones(4))


def test_elementwise_on_plain_arrays_needs_no_circuit():
    out = cr.exp(np.zeros(3))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, np.ones(3))
