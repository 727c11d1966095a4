"""Padding modes: PyTorch's ``F.pad`` (constant, reflect, replicate, circular) against PyTorch,
NumPy's ``cr.pad`` / ``np.pad`` on tensors (constant, reflect, symmetric, edge, wrap) against
``np.pad``; gradients sum the copies back (gradcheck, PyTorch, second order); bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from oracle import compare, compare_second_order

import chainrule as cr
from chainrule.nn import functional as F


@st.composite
def torch_pad_cases(draw):
    """A mode, an input shape PyTorch accepts for it (1 or 2 leading axes before the padded
    ones) and widths within PyTorch's limits for that mode."""
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    padded = draw(st.integers(1, 3))
    lead = draw(st.integers(1, 2))
    shape = tuple(draw(st.integers(1, 2)) for _ in range(lead)) + tuple(
        draw(st.integers(2 if mode == "reflect" else 1, 4)) for _ in range(padded)
    )
    pad = []
    for n in reversed(shape[lead:]):  # the last axis first, as PyTorch lists them
        top = {"reflect": n - 1, "circular": n}.get(mode, 3)
        pad += [draw(st.integers(0, top)), draw(st.integers(0, top))]
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return mode, shape, tuple(pad), dtype


@given(case=torch_pad_cases(), seed=st.integers(0, 2**16))
def test_F_pad_matches_torch_in_every_mode(case, seed):
    mode, shape, pad, dtype = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    compare(lambda t: F.pad(t, pad, mode), lambda t: TF.pad(t, pad, mode), x)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_F_pad_second_derivatives_and_gradcheck(mode):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    compare_second_order(
        lambda t: F.pad(t, (2, 1, 1, 2), mode) ** 3, lambda t: TF.pad(t, (2, 1, 1, 2), mode) ** 3, x
    )
    assert cr.gradcheck(lambda t: F.pad(t, (3, 1), mode) ** 2, x)


@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    mode=st.sampled_from(["constant", "reflect", "symmetric", "edge", "wrap"]),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_numpy_pad_matches_np_pad_and_its_gradient_is_the_adjoint(shape, mode, data, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    # widths beyond the axis length repeat the pattern, as in NumPy
    widths = tuple((data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6))) for _ in shape)
    t = cr.tensor(x, requires_grad=True)
    out = np.pad(t, widths, mode=mode)  # through __array_function__: cr.pad
    assert isinstance(out, cr.Tensor) and out.dtype == dtype
    np.testing.assert_array_equal(out.data, np.pad(x, widths, mode=mode))
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(g)
    # <pad(x), g> == <x, grad>: the gradient is padding's adjoint (each copy's gradient summed)
    v = rng.standard_normal(shape)
    np.testing.assert_allclose(
        (np.pad(v, widths, mode=mode) * g).sum(),
        (v * t.grad).sum(),
        rtol=1e-4 if dtype == np.float32 else 1e-12,
    )


def test_numpy_pad_widths_forms_and_gradcheck():
    x = np.random.default_rng(2).standard_normal((3, 2))
    for width in (2, (1, 3), ((0, 1), (4, 0)), [[2, 2]]):
        np.testing.assert_array_equal(
            cr.pad(cr.tensor(x), width, "symmetric").data, np.pad(x, width, "symmetric")
        )
    np.testing.assert_array_equal(
        cr.pad(x, 1, constant_values=2.5), np.pad(x, 1, constant_values=2.5)
    )
    assert cr.gradcheck(lambda t: cr.pad(t, ((5, 1), (2, 3)), "reflect") ** 2, x)
    assert cr.gradcheck(lambda t: cr.pad(t, ((1, 4), (0, 3)), "wrap") ** 2, x)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: F.pad(np.zeros((2, 3)), (3, 0), "reflect"), "less than the axis length 3"),
        (lambda: F.pad(np.zeros((2, 3)), (4, 0), "circular"), "at most the axis length 3"),
        (lambda: F.pad(np.zeros((2, 3)), (1, 1), "reflect", 1.0), "takes no value"),
        (lambda: F.pad(np.zeros((2, 3)), (1, 1), "edge"), "'pad': mode must be"),
        (lambda: F.pad(np.zeros((2, 0)), (1, 1), "replicate"), "empty axis"),
        (lambda: cr.pad(np.zeros((2, 3)), ((1, 1), (1, 1), (1, 1))), "pad_width"),
        (lambda: cr.pad(np.zeros((2, 3)), -1), "pad_width"),
        (lambda: cr.pad(np.zeros((2, 3)), 1.5), "pad_width"),
        (lambda: cr.pad(np.zeros((2, 3)), 1, "replicate"), "'pad': mode must be one of"),
        (lambda: cr.pad(np.zeros((2, 3)), 1, "reflect", constant_values=1), "constant_values"),
        (lambda: cr.pad(np.zeros((2, 3)), 1, constant_values=(1, 2)), "must be a number"),
    ],
)
def test_bad_padding_names_the_gate(call, message):
    with pytest.raises(cr.GateError, match=message):
        call()
