"""Edge cases peers' test suites reach (issue 9 item 8), each against PyTorch or NumPy: a float
base raised to a tensor power, empty index lists, concatenate(axis=None), reductions of empty
arrays, axes of 0-d tensors, and softmax rows holding infinities."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import chainrule as cr


def _torch(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("base", [0.0, 2.0, 0.5])
@pytest.mark.parametrize("exponent", [[1.0, 2.0, 0.0, -1.0, 0.5], [], [3.0]])
def test_a_float_base_to_a_tensor_power_matches_pytorch(base, exponent):
    t = cr.tensor(exponent, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0 ** -1 = inf, as NumPy says
        out = base**t
        out.sum().backward()
    theirs = _torch(exponent)
    (base**theirs).sum().backward()
    np.testing.assert_array_equal(out.data, (base**theirs).detach().numpy())
    np.testing.assert_allclose(t.grad, theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3), (4,), (0, 2)])
def test_an_empty_index_list_gives_an_empty_result_like_numpy(shape):
    data = np.arange(float(np.prod(shape))).reshape(shape)
    x = cr.tensor(data, requires_grad=True)
    out = x[[]]
    assert out.shape == data[[]].shape == _torch(data)[[]].shape
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(shape))


def test_concatenate_with_axis_none_flattens_and_differentiates_like_numpy():
    parts = [np.arange(4.0).reshape(2, 2), np.arange(3.0), np.ones((1, 2, 1))]
    xs = [cr.tensor(p, requires_grad=True) for p in parts]
    out = cr.concatenate(xs, axis=None)
    np.testing.assert_array_equal(out.data, np.concatenate(parts, axis=None))
    weights = np.arange(9.0)
    (out * weights).sum().backward()
    theirs = [_torch(p) for p in parts]
    (torch.cat([t.reshape(-1) for t in theirs]) * torch.tensor(weights)).sum().backward()
    for x, t in zip(xs, theirs, strict=True):
        np.testing.assert_array_equal(x.grad, t.grad.numpy())


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_max_and_min_over_a_non_empty_axis_of_an_empty_array_are_empty(reduce):
    data = np.zeros((0, 3))
    x = cr.tensor(data, requires_grad=True)
    out = getattr(x, reduce)(axis=1)
    assert out.shape == getattr(data, reduce)(axis=1).shape == (0,)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    with pytest.raises(cr.GateError, match=f"gate '{reduce}': cannot reduce an empty array"):
        getattr(x, reduce)(axis=0)  # NumPy: zero-size array to reduction ... has no identity


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_an_axis_of_a_0d_tensor_is_a_chainrule_error_like_numpy(reduce):
    x = cr.tensor(2.0, requires_grad=True)
    with pytest.raises(np.exceptions.AxisError):
        np.mean(np.array(2.0), axis=0)  # NumPy's own answer (np.sum happens to allow it)
    with pytest.raises(cr.GateError, match=f"gate '{reduce}': axis 0 is out of range"):
        getattr(x, reduce)(axis=0)


@pytest.mark.parametrize(
    "row", [[1.0, np.inf, 0.0], [-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 0.0], [np.nan, 1, 2]]
)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_rows_with_infinities_matches_pytorch(name, row):
    data = np.array([row, [1.0, 2.0, 3.0]])
    weights = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    x = cr.tensor(data, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf, as NumPy says
        out = getattr(cr, name)(x, axis=1)
        (out * weights).sum().backward()
    theirs = _torch(data)
    mine = getattr(torch, name)(theirs, 1)
    (mine * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(out.data, mine.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)
