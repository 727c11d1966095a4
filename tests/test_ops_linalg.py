"""Matrix product gates: matmul for 1-D, 2-D and batched N-D operands (np.matmul rules, batch
broadcasting) and dot, against PyTorch in float32/float64; gradients skipped for inputs that need
none; second derivatives; gradcheck; errors that name the gate and both shapes."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle import arrays, compare, compare_second_order, distinct, dtypes

import chainrule as cr
from chainrule.ops import linalg


@st.composite
def matmul_shapes(draw):
    """Operand shapes np.matmul accepts: 1-D or N-D with broadcastable batch dimensions."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)
    ).input_shapes
    a_dims, b_dims = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2, 3]))
    sa = (k,) if a_dims == 1 else (*(batch_a if a_dims == 3 else ()), n, k)
    sb = (k,) if b_dims == 1 else (*(batch_b if b_dims == 3 else ()), k, m)
    return sa, sb


@given(case=matmul_shapes(), dtype=dtypes(), data=st.data())
def test_matmul_matches_torch(case, dtype, data):
    sa, sb = case
    a, b = data.draw(arrays(dtype, sa)), data.draw(arrays(dtype, sb))
    compare(lambda x, y: x @ y, lambda x, y: x @ y, a, b, scale=4.0)
    compare(lambda x, y: cr.matmul(x, y), torch.matmul, a, b, scale=4.0)


@given(case=matmul_shapes(), dtype=dtypes(), data=st.data())
def test_matmul_with_a_numpy_operand_on_either_side(case, dtype, data):
    sa, sb = case
    a, b = data.draw(arrays(dtype, sa)), data.draw(arrays(dtype, sb))
    compare(lambda x: x @ b, lambda x: x @ torch.from_numpy(b), a, scale=4.0)
    compare(lambda y: a @ y, lambda y: torch.from_numpy(a) @ y, b, scale=4.0)


@pytest.mark.parametrize(
    "sa,sb",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((), (2, 2)), ((2,), ())],
)
def test_dot_matches_numpy_and_torch(sa, sb, rng):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = cr.tensor(a).dot(cr.tensor(b))
    np.testing.assert_allclose(out.data, np.dot(a, b))

    def theirs(x, y):
        if x.ndim == 0 or y.ndim == 0:
            return x * y
        return x @ y

    compare(lambda x, y: x.dot(y), theirs, a, b)
    compare(lambda x, y: cr.dot(x, y), theirs, a, b)


SECOND_ORDER_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((2, 2, 3), (3, 2)),
    ((3,), (2, 3, 2)),
    ((2, 1, 2, 3), (3, 3, 1)),
]


@pytest.mark.parametrize("sa,sb", SECOND_ORDER_SHAPES)
def test_matmul_second_derivatives_and_gradcheck(sa, sb, rng):
    a, b = distinct(rng, sa), distinct(rng, sb)
    compare_second_order(lambda x, y: x @ y, lambda x, y: x @ y, a, b)
    compare_second_order(lambda x, y: (x @ y).tanh(), lambda x, y: (x @ y).tanh(), a, b)
    assert cr.gradcheck(lambda x, y: x @ y, a, b)


@pytest.mark.parametrize("sa,sb", [((4, 3), (3, 2)), ((3,), (3, 2)), ((2, 4, 3), (3,))])
def test_matmul_skips_gradients_nobody_needs(sa, sb):
    w = cr.tensor(np.ones(sb), requires_grad=True)
    out = cr.tensor(np.ones(sa)) @ w
    grad_x, grad_w = linalg.MatMul.backward(out, np.ones(out.shape))
    assert grad_x is None
    assert grad_w.shape == sb
    x = cr.tensor(np.ones(sa), requires_grad=True)
    out = x @ np.ones(sb)
    grad_x, grad_w = linalg.MatMul.backward(out, np.ones(out.shape))
    assert grad_x.shape == sa
    assert grad_w is None


def test_matmul_backward_never_forms_the_input_gradient_of_a_constant():
    w = cr.tensor(np.ones((3, 2)), requires_grad=True)
    x = cr.tensor(np.ones((4, 3)))
    out = x @ w
    out.backward(np.ones((4, 2)))
    assert x.grad is None
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 4.0))


@pytest.mark.parametrize(
    "sa,sb,message",
    [
        ((2, 3), (2, 3), r"gate 'matmul'.*\(2, 3\) and \(2, 3\).*inner dimensions 3 and 2"),
        ((3,), (4,), r"gate 'matmul'.*\(3,\) and \(4,\).*inner dimensions 3 and 4"),
        ((2, 2, 3), (3, 3, 4), r"gate 'matmul'.*\(2, 2, 3\) and \(3, 3, 4\).*batch dimensions"),
        ((), (2, 2), r"gate 'matmul'.*at least one dimension.*\(\) and \(2, 2\)"),
    ],
)
def test_matmul_shape_errors_name_the_gate_and_both_shapes(sa, sb, message):
    a = cr.tensor(np.ones(sa), requires_grad=True)
    with pytest.raises(cr.GateError, match=message):
        a @ np.ones(sb)
    with pytest.raises(cr.GateError, match=message):
        cr.matmul(a, cr.tensor(np.ones(sb), requires_grad=True))


def test_dot_refuses_batched_operands():
    with pytest.raises(cr.GateError, match=r"gate 'dot'.*3 and 2 dimensions.*matmul"):
        cr.zeros(2, 2, 2).dot(cr.zeros(2, 2))


def test_matmul_keeps_float32():
    a = cr.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    b = cr.tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
    out = a @ b
    out.sum().backward()
    assert out.dtype == a.grad.dtype == b.grad.dtype == np.float32
