"""Initializers: PyTorch's bounds and standard deviations, gains, seeding, bad input."""

import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import init


def param(*shape):
    return nn.Parameter(np.zeros(shape))


@pytest.mark.parametrize(
    "name,param_",
    [
        ("linear", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
    ],
)
def test_gains_match_torch(name, param_):
    assert math.isclose(
        init.calculate_gain(name, param_), torch.nn.init.calculate_gain(name, param_), rel_tol=1e-12
    )


def test_uniform_initializers_respect_their_bounds():
    p = param(300, 200)
    init.xavier_uniform_(p, seed=0)
    bound = math.sqrt(6 / 500)
    assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound
    init.kaiming_uniform_(p, nonlinearity="relu", seed=0)
    bound = math.sqrt(2) * math.sqrt(3 / 200)
    assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound


@pytest.mark.parametrize(
    "fill,std",
    [
        (lambda p: init.xavier_normal_(p, seed=1), math.sqrt(2 / 500)),
        (lambda p: init.xavier_normal_(p, gain=2.0, seed=1), 2 * math.sqrt(2 / 500)),
        (lambda p: init.kaiming_normal_(p, nonlinearity="relu", seed=1), math.sqrt(2 / 200)),
        (
            lambda p: init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu", seed=1),
            math.sqrt(2 / 300),
        ),
    ],
)
def test_normal_initializers_have_the_right_spread(fill, std):
    p = fill(param(300, 200))
    assert abs(p.data.std() / std - 1) < 0.02
    assert abs(p.data.mean()) < 0.05 * std


def test_seeding_repeats_and_generators_are_exclusive():
    a = init.xavier_uniform_(param(4, 5), seed=3).data.copy()
    assert np.array_equal(init.xavier_uniform_(param(4, 5), seed=3).data, a)
    gen = np.random.default_rng(3)
    assert np.array_equal(init.xavier_uniform_(param(4, 5), generator=gen).data, a)
    init.manual_seed(9)
    b = init.normal_(param(3)).data.copy()
    init.manual_seed(9)
    assert np.array_equal(init.normal_(param(3)).data, b)
    with pytest.raises(ValueError, match="either seed or generator"):
        init.uniform_(param(2), seed=1, generator=gen)


def test_fill_in_place_and_bad_input():
    p = param(2, 3)
    data = p.data
    assert init.uniform_(p, -1, 1, seed=0) is p and p.data is data
    assert np.all(init.zeros_(p).data == 0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(param(5))
    with pytest.raises(ValueError, match="mode must be"):
        init.kaiming_normal_(p, mode="fan")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    assert isinstance(p, cr.Tensor)
