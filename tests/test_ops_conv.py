"""conv2d, max/avg pooling and pad: values and gradients against PyTorch on hypothesis shapes
(stride, padding, dilation, groups; float32 and float64), second derivatives, gradcheck, the nn
modules, and clear errors for bad arguments."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare, compare_second_order, distinct

import chainrule as cr
from chainrule.engine import gradients
from chainrule.nn import functional as F

TF = torch.nn.functional


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c = groups * draw(st.integers(1, 2))
    f = groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), 6))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), 6))
    n = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c, h, w), (f, c // groups, *k), stride, padding, dilation, groups, bias, dtype


@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv2d_matches_torch(case, seed):
    xs, ws, stride, padding, dilation, groups, bias, dtype = case
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)]
    if bias:
        inputs.append(rng.standard_normal(ws[0]).astype(dtype))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    def ours(x, w, b=None):
        return F.conv2d(x, w, b, **options)

    def theirs(x, w, b=None):
        return TF.conv2d(x, w, b, **options)

    compare(ours, theirs, *inputs)


@settings(max_examples=8)
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv2d_second_derivatives_match_torch(case, seed):
    xs, ws, stride, padding, dilation, groups, bias, _ = case
    rng = np.random.default_rng(seed)
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    # squared so that the second derivatives are not zero
    def ours(x, w):
        out = F.conv2d(x, w, **options)
        return out * out

    def theirs(x, w):
        out = TF.conv2d(x, w, **options)
        return out * out

    compare_second_order(ours, theirs, rng.standard_normal(xs), rng.standard_normal(ws))


def test_conv2d_gradcheck_and_the_three_gates_differentiate_each_other():
    rng = np.random.default_rng(0)
    x, w, b = (
        rng.standard_normal((2, 4, 5, 6)),
        rng.standard_normal((4, 2, 3, 2)),
        rng.standard_normal(4),
    )
    opts = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    assert cr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **opts), x, w, b)
    # the gradient of the gradient: d/dx of sum(dL/dW * v)
    v = rng.standard_normal(w.shape)

    def grad_w_along_v(x):
        wt = cr.tensor(w, requires_grad=True)
        (gw,) = gradients((F.conv2d(x, wt, **opts) ** 2).sum(), [wt], create_graph=True)
        return (gw * v).sum()

    assert cr.gradcheck(grad_w_along_v, x)


def test_conv2d_unbatched_and_same_padding():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 6, 6)), rng.standard_normal((2, 3, 3, 3))
    ours = F.conv2d(cr.tensor(x), w, padding="same")
    theirs = TF.conv2d(torch.tensor(x), torch.tensor(w), padding="same")
    assert ours.shape == (2, 6, 6)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12, atol=1e-12)


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, dilation[0] * (k[0] - 1) + 1 - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, dilation[1] * (k[1] - 1) + 1 - 2 * padding[1]), 7))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return shape, k, stride, padding, dilation, draw(st.sampled_from([np.float32, np.float64]))


@given(case=pool_cases(), seed=st.integers(0, 2**16), ties=st.booleans(), ceil=st.booleans())
def test_max_pool2d_matches_torch_including_ties(case, seed, ties, ceil):
    shape, k, stride, padding, dilation, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if ties:  # few distinct values: windows with several maxima take PyTorch's first one
        x = np.round(x)
    x = x.astype(dtype)
    compare(
        lambda t: F.max_pool2d(t, k, stride, padding, dilation, ceil),
        lambda t: TF.max_pool2d(t, k, stride, padding, dilation, ceil),
        x,
    )
    _, ours = F.max_pool2d(cr.tensor(x), k, stride, padding, dilation, ceil, return_indices=True)
    _, theirs = TF.max_pool2d(torch.from_numpy(x), k, stride, padding, dilation, ceil, True)
    assert ours.dtype == np.int64 and not ours.requires_grad
    np.testing.assert_array_equal(ours.data, theirs.numpy())


@given(
    case=pool_cases(),
    seed=st.integers(0, 2**16),
    include=st.booleans(),
    ceil=st.booleans(),
    divisor=st.sampled_from([None, None, 1, 3]),
)
def test_avg_pool2d_matches_torch(case, seed, include, ceil, divisor):
    shape, k, stride, padding, _, dtype = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    compare(
        lambda t: F.avg_pool2d(t, k, stride, padding, ceil, include, divisor),
        lambda t: TF.avg_pool2d(t, k, stride, padding, ceil, include, divisor),
        x,
    )


def test_ceil_mode_keeps_partial_windows_and_drops_ones_starting_in_the_padding():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    assert F.max_pool2d(x, 2).shape == (1, 1, 2, 2)
    assert F.max_pool2d(x, 2, ceil_mode=True).shape == (1, 1, 3, 3)
    # a window that would start in the trailing padding (at 6 of 5 + 1) is dropped: 3, not 4
    assert F.max_pool2d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)
    assert TF.max_pool2d(torch.from_numpy(x), 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)
    # the partial window's mean divides by the elements it covers (PyTorch's divisor)
    np.testing.assert_allclose(F.avg_pool2d(x, 2, ceil_mode=True)[0, 0, 2, 2], 24.0)


def test_max_pool2d_indices_follow_ties_and_nan_as_torch():
    x = np.zeros((2, 3, 4, 5))
    x[0, 1, 2, 3] = np.nan
    out, idx = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    _, expected = TF.max_pool2d(torch.from_numpy(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, expected.numpy())


def test_pooling_second_derivatives_and_gradcheck():
    rng = np.random.default_rng(2)
    x = distinct(rng, (2, 1, 4, 5), low=-4.0, high=4.0)
    for ours, theirs in [
        (lambda t: F.max_pool2d(t, 3, 2, 1) ** 2, lambda t: TF.max_pool2d(t, 3, 2, 1) ** 2),
        (lambda t: F.avg_pool2d(t, 2, 1, 1) ** 2, lambda t: TF.avg_pool2d(t, 2, 1, 1) ** 2),
        (
            lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False) ** 2,
            lambda t: TF.avg_pool2d(t, 3, 2, 1, count_include_pad=False) ** 2,
        ),
        (
            lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True) ** 2,
            lambda t: TF.max_pool2d(t, 3, 2, 1, ceil_mode=True) ** 2,
        ),
        (
            lambda t: F.avg_pool2d(t, 2, 2, 1, True, False) ** 2,
            lambda t: TF.avg_pool2d(t, 2, 2, 1, True, False) ** 2,
        ),
        (
            lambda t: F.avg_pool2d(t, 3, 2, 0, True, divisor_override=2) ** 2,
            lambda t: TF.avg_pool2d(t, 3, 2, 0, True, divisor_override=2) ** 2,
        ),
    ]:
        compare_second_order(ours, theirs, x)
        assert cr.gradcheck(ours, x)


def test_max_pool2d_nan_wins_as_in_torch():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    compare(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), x)


def test_pad_matches_torch_and_differentiates():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    compare(
        lambda t: F.pad(t, (1, 2, 0, 1), value=0.5), lambda t: TF.pad(t, (1, 2, 0, 1), value=0.5), x
    )
    assert cr.gradcheck(lambda t: F.pad(t, (1, 1)) ** 2, x)


def test_modules_match_torch_with_the_same_state_dict():
    ours = cr.nn.Sequential(
        cr.nn.Conv2d(2, 4, 3, padding=1, seed=0),
        cr.nn.ReLU(),
        cr.nn.MaxPool2d(2),
        cr.nn.AvgPool2d(2, stride=1),
        cr.nn.Flatten(),
        cr.nn.Linear(4, 3, seed=1),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.AvgPool2d(2, stride=1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    ).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((3, 2, 4, 4))
    np.testing.assert_allclose(
        ours(cr.tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10
    )
    assert "Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in repr(ours)
    assert cr.nn.Conv2d(4, 4, 3, groups=2, bias=False).weight.shape == (4, 2, 3, 3)


def test_pool_modules_take_torchs_arguments_and_order():
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 7))
    ours = cr.nn.MaxPool2d(3, 2, 1, 1, True, True)  # return_indices, ceil_mode
    theirs = torch.nn.MaxPool2d(3, 2, 1, 1, True, True)
    (out, idx), (t_out, t_idx) = ours(cr.tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_array_equal(out.data, t_out.numpy())
    np.testing.assert_array_equal(idx.data, t_idx.numpy())
    assert repr(ours) == repr(theirs)
    ours, theirs = (
        cr.nn.AvgPool2d(2, 2, 1, True, False, None),
        torch.nn.AvgPool2d(2, 2, 1, True, False),
    )
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3))), "does not fit weight"),
        (lambda: F.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2), "divisible"),
        (lambda: F.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3))), "output would be empty"),
        (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=0), "stride"),
        (lambda: F.conv2d(np.zeros((5, 5)), np.zeros((1, 1, 3, 3))), "3-D or 4-D"),
        (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), np.zeros(2)), "bias"),
        (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=2), "at most half"),
        (lambda: F.avg_pool2d(np.zeros((4, 4)), 2), "3-D or 4-D"),
        (lambda: F.avg_pool2d(np.zeros((1, 4, 4)), 2, divisor_override=0), "divisor_override"),
        (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2, dilation=0), "'max_pool2d': dilation"),
        (lambda: F.pad(np.zeros((2, 2)), (1,)), "even number"),
        (lambda: F.pad(np.zeros((2, 2)), (1, 1), mode="wrap"), "mode must be"),
        (lambda: cr.nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    ],
)
def test_bad_arguments_name_the_gate(call, message):
    with pytest.raises((cr.GateError, ValueError), match=message):
        call()


def test_explain_and_draw_read_a_convnet_circuit():
    x = cr.tensor(np.random.default_rng(5).standard_normal((1, 1, 4, 4)), requires_grad=True)
    w = cr.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    out = F.max_pool2d(F.batch_norm(F.conv2d(x, w), None, None, training=True), 2).sum()
    text = str(cr.explain(out))
    assert "maxpool" in text and "BN" in text and "conv" in text
    assert "(1,1,4,4) <- dt1 (1,1,3,3)" in text  # the transposed convolution's shape
    assert "conv" in cr.draw(out).dot
