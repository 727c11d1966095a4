"""linear_combination: a neuron's weighted sum ``b + Σ w_i x_i`` as one gate, checked against the
same expression built from * and +, against centered differences, and against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine import gradients
from chainrule.ops import LinearCombination

numbers = st.sampled_from((0.0, 1.0, -1.0)) | st.floats(-3.0, 3.0)


def test_one_gate_with_two_n_plus_one_input_slots():
    w = [cr.Value(2.0), cr.Value(-3.0)]
    x = [cr.Value(-1.0), cr.Value(-2.0)]
    b = cr.Value(-3.0)
    out = cr.linear_combination(w, x, b)
    assert out.data == 1.0 and out.gate is LinearCombination
    assert out.inputs == (*w, *x, b)
    assert len(cr.trace(out).gates) == 1
    out.backward()
    assert [v.grad for v in w] == [-1.0, -2.0]  # each weight gets its input...
    assert [v.grad for v in x] == [2.0, -3.0]  # ...each input its weight (mul swaps)
    assert b.grad == 1.0


@given(st.lists(st.tuples(numbers, numbers), min_size=0, max_size=6), numbers, numbers)
def test_same_value_and_gradients_as_the_primitive_expression(pairs, bias, upstream):
    def build(fused: bool):
        w = [cr.Value(a) for a, _ in pairs]
        x = [cr.Value(c) for _, c in pairs]
        b = cr.Value(bias)
        if fused:
            out = cr.linear_combination(w, x, b)
        else:
            out = sum((wi * xi for wi, xi in zip(w, x)), b)
        (out * upstream).backward()
        return out.data, [v.grad for v in (*w, *x, b)]

    fused, primitive = build(True), build(False)
    assert fused[0] == sum((a * c for a, c in pairs), bias)  # Python's sum, started at b
    assert math.isclose(fused[0], primitive[0], rel_tol=1e-12, abs_tol=1e-12)
    assert fused[1] == primitive[1]  # the same products: bit for bit


@given(st.lists(st.tuples(numbers, numbers), min_size=1, max_size=5), numbers)
def test_gradients_match_centered_differences(pairs, bias):
    data = [a for a, _ in pairs] + [c for _, c in pairs] + [bias]
    n = len(pairs)

    def f(values):
        return cr.linear_combination(values[:n], values[n : 2 * n], values[-1]).tanh()

    leaves = [cr.Value(d) for d in data]
    f(leaves).backward()
    eps = 1e-6
    for i, leaf in enumerate(leaves):
        plus, minus = list(data), list(data)
        plus[i] += eps
        minus[i] -= eps
        with cr.no_grad():
            numeric = (
                f([cr.Value(v) for v in plus]).data - f([cr.Value(v) for v in minus]).data
            ) / (2 * eps)
        assert math.isclose(leaf.grad, numeric, rel_tol=1e-5, abs_tol=1e-8)


@given(st.lists(st.tuples(numbers, numbers), min_size=1, max_size=6), numbers)
def test_agrees_with_pytorch(pairs, bias):
    w = [cr.Value(a) for a, _ in pairs]
    x = [cr.Value(c) for _, c in pairs]
    b = cr.Value(bias)
    cr.linear_combination(w, x, b).sigmoid().backward()
    tw = torch.tensor([a for a, _ in pairs], dtype=torch.float64, requires_grad=True)
    tx = torch.tensor([c for _, c in pairs], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(torch.dot(tw, tx) + tb).backward()
    np.testing.assert_allclose([v.grad for v in w], tw.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([v.grad for v in x], tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert math.isclose(b.grad, tb.grad.item(), rel_tol=1e-12, abs_tol=1e-15)


def test_a_value_in_several_slots_gets_the_sum_of_their_gradients():
    params = [cr.Value(1.5), cr.Value(-2.0)]
    squares = cr.linear_combination(params, params)  # a sum of squares: p*p at a fork
    assert squares.data == 1.5**2 + 2.0**2
    squares.backward()
    assert [p.grad for p in params] == [3.0, -4.0]


def test_numbers_in_any_slot_are_constants():
    w = cr.Value(2.0)
    out = cr.linear_combination([w, 3.0], [4, cr.Value(5.0)], 1)
    assert out.data == 1 + 2.0 * 4 + 3.0 * 5.0
    assert [i.requires_grad for i in out.inputs] == [True, False, False, True, False]
    out.backward()
    assert w.grad == 4.0
    assert cr.linear_combination([2.0], [3.0], 1.0) == 7.0  # no Value at all: just a number


def test_no_weights_gives_the_bias():
    b = cr.Value(0.5)
    out = cr.linear_combination([], [], b)
    out.backward()
    assert out.data == 0.5 and b.grad == 1.0


def test_bias_defaults_to_zero():
    assert cr.linear_combination([cr.Value(2.0)], [cr.Value(3.0)]).data == 6.0


def test_mismatched_lengths_name_the_gate():
    with pytest.raises(cr.GateError, match=r"gate 'linear_combination': 2 weight\(s\) but 1 "):
        cr.linear_combination([cr.Value(1.0), cr.Value(2.0)], [cr.Value(1.0)])


@pytest.mark.parametrize(
    "slots",
    [
        lambda: ([cr.Value(1.0)], [cr.tensor(1.0, requires_grad=True)], cr.Value(0.0)),  # 0-d
        lambda: ([cr.Value(1.0)], [cr.tensor([1.0, 2.0])], cr.Value(0.0)),
        lambda: ([cr.tensor(1.0)], [cr.Value(1.0)], 0.0),
        lambda: ([cr.Value(1.0)], [cr.Value(1.0)], cr.tensor(0.0)),
    ],
)
def test_mixing_values_and_tensors_is_refused(slots):
    with pytest.raises(cr.GateError, match="gate 'linear_combination': cannot mix"):
        cr.linear_combination(*slots())


def test_no_grad_records_nothing():
    w = cr.Value(1.0)
    with cr.no_grad():
        out = cr.linear_combination([w], [w], w)
    assert out.is_leaf and not out.requires_grad and out.data == 2.0


def test_second_derivatives_through_the_gate():
    w, x = cr.Value(1.5), cr.Value(-2.0)
    out = cr.linear_combination([w], [x], 0.0) ** 2  # (w x)^2
    gw, gx = gradients(out, [w, x], create_graph=True)
    assert gw.data == 2 * (1.5 * -2.0) * -2.0
    (gwx,) = gradients(gw, [x])  # d/dx 2 w x^2 = 4 w x
    assert gwx == 4 * 1.5 * -2.0


def test_equal_shape_tensors_work_elementwise_and_pass_gradcheck():
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(3) for _ in range(5)]

    def f(w0, w1, x0, x1, b):
        return cr.linear_combination([w0, w1], [x0, x1], b).tanh().sum()

    assert cr.gradcheck(f, *data)
