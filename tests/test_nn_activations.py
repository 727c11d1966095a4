"""Activation modules against torch.nn (values, gradients including the tie at 0) and gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import chainrule as cr
from chainrule import nn

PAIRS = [
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.ELU(), torch.nn.ELU()),
    (nn.ELU(0.5), torch.nn.ELU(0.5)),
]
IDS = [repr(ours) for ours, _ in PAIRS]


def compare(ours, theirs, x):
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_c, out_t = ours(xc), theirs(xt)
    np.testing.assert_allclose(out_c.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-15)
    g = np.linspace(-1, 1, x.size).reshape(x.shape)
    out_c.backward(g)
    out_t.backward(torch.from_numpy(g))
    # 1 - tanh(x)² cancels for large |x|: compare gradients to 1e-12 absolute
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=IDS)
@given(
    x=arrays(
        np.float64,
        st.integers(1, 12),
        elements=st.floats(-30, 30, allow_nan=False, allow_subnormal=False),
    )
)
def test_activation_matches_torch(ours, theirs, x):
    compare(ours, theirs, x)


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=IDS)
def test_activation_at_zero_and_extremes_matches_torch(ours, theirs):
    compare(ours, theirs, np.array([0.0, -0.0, 1e-300, -800.0, 800.0]))


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=IDS)
def test_activation_gradcheck(ours, theirs):
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert cr.gradcheck(lambda t: ours(t), x)


def test_activation_modules_have_no_parameters_and_read_well():
    assert list(nn.ReLU().parameters()) == []
    assert repr(nn.LeakyReLU(0.1)) == "LeakyReLU(negative_slope=0.1)"
    assert repr(nn.ELU()) == "ELU(alpha=1.0)"
