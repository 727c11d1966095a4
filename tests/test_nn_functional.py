"""nn.functional: losses against torch.nn.functional and hand loops, the fused gates against the
built-in gates they replace (values, gradients, second derivatives), L2 penalty, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule.nn import functional as F


def scores_and_labels(seed, n=6, c=4, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((n, c)), rng.integers(0, c, n)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction):
    s, y = scores_and_labels(0)
    sc, st_ = cr.tensor(s, requires_grad=True), torch.tensor(s, requires_grad=True)
    ours = F.cross_entropy(sc, y, reduction)
    theirs = torch.nn.functional.cross_entropy(st_, torch.from_numpy(y), reduction=reduction)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    g = np.linspace(0.5, 1.5, ours.size).reshape(ours.shape)
    ours.backward(g)
    theirs.backward(torch.from_numpy(g))
    np.testing.assert_allclose(sc.grad, st_.grad.numpy(), rtol=1e-12, atol=1e-15)


@given(seed=st.integers(0, 10**6), scale=st.sampled_from([1e-3, 1.0, 1e3, 1e5]))
def test_cross_entropy_is_stable_and_equals_log_softmax_composition(seed, scale):
    s, y = scores_and_labels(seed, scale=scale)
    fused = F.cross_entropy(cr.tensor(s), y).item()
    logp = cr.log_softmax(cr.tensor(s), axis=1).data
    assert np.isfinite(fused)
    np.testing.assert_allclose(fused, -logp[np.arange(len(y)), y].mean(), rtol=1e-12)


def test_cross_entropy_gradcheck_and_hessian_match_composition():
    s, y = scores_and_labels(1, n=3, c=3)
    assert cr.gradcheck(lambda t: F.cross_entropy(t, y), s)
    assert cr.gradcheck(lambda t: F.cross_entropy(t, y, "none"), s)

    def composed(t):
        return -cr.log_softmax(t, axis=1)[np.arange(3), y].sum()

    np.testing.assert_allclose(
        cr.hessian(lambda t: F.cross_entropy(t, y, "sum"))(s),
        cr.hessian(composed)(s),
        rtol=1e-10,
        atol=1e-14,
    )


@pytest.mark.parametrize(
    "labels,message",
    [
        (np.array([0, 1, 2, 4, 0, 1]), "label 4 is out of range for 4 classes"),
        (np.array([0, 1, -1, 0, 0, 1]), "label -1 is out of range"),
        (np.array([0, 1, -3, 0, 0, 1], dtype=np.int8), "label -3 is out of range"),
        (np.array([0, 1, -2, 0, 0, 1], dtype=">i4"), "label -2 is out of range"),
        (np.array([0, 1, 2, 0, 9, 1], dtype=np.uint16), "label 9 is out of range"),
        (np.array([0.0, 1, 2, 0, 0, 1]), "labels must be integers"),
        (np.array([0, 1]), r"labels of shape \(2,\) do not match 6 samples"),
    ],
)
@pytest.mark.parametrize("loss", [F.cross_entropy, F.svm_loss])
def test_bad_labels_name_the_loss_and_the_value(loss, labels, message):
    s, _ = scores_and_labels(0)
    with pytest.raises(cr.GateError, match=f"{loss.__name__}: {message}"):
        loss(cr.tensor(s), labels)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.svm_loss])
def test_scores_must_be_a_non_empty_matrix(loss):
    with pytest.raises(cr.GateError, match="2-D"):
        loss(cr.tensor(np.ones(4)), np.array([0]))
    with pytest.raises(cr.GateError, match="non-empty"):
        loss(cr.tensor(np.ones((0, 3))), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="reduction must be one of"):
        loss(cr.tensor(np.ones((1, 3))), np.array([0]), reduction="avg")


def svm_by_loops(s, y, margin):
    total = 0.0
    for i in range(len(y)):
        for j in range(s.shape[1]):
            if j != y[i]:
                total += max(0.0, s[i, j] - s[i, y[i]] + margin)
    return total / len(y)


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_loss_is_the_cs231n_hinge_and_torch_multi_margin_times_classes(margin):
    s, y = scores_and_labels(2)
    sc, st_ = cr.tensor(s, requires_grad=True), torch.tensor(s, requires_grad=True)
    ours = F.svm_loss(sc, y, margin)
    np.testing.assert_allclose(ours.item(), svm_by_loops(s, y, margin), rtol=1e-12)
    theirs = torch.nn.functional.multi_margin_loss(st_, torch.from_numpy(y), margin=margin)
    theirs = theirs * s.shape[1]  # torch divides by the number of classes
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(sc.grad, st_.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_svm_loss_gradcheck_and_reductions():
    s, y = scores_and_labels(3)
    assert cr.gradcheck(lambda t: F.svm_loss(t, y), s)
    per_sample = F.svm_loss(cr.tensor(s), y, reduction="none").data
    assert per_sample.shape == (6,)
    np.testing.assert_allclose(
        F.svm_loss(cr.tensor(s), y, reduction="sum").item(), per_sample.sum()
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    ac, at = cr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ours = F.mse_loss(ac, b, reduction)
    theirs = torch.nn.functional.mse_loss(at, torch.from_numpy(b), reduction=reduction)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(ac.grad, at.grad.numpy(), rtol=1e-12)
    assert cr.gradcheck(lambda t: F.mse_loss(t, b, reduction), a)


def test_mse_loss_shape_mismatch():
    with pytest.raises(
        cr.GateError,
        match=r"mse_loss: input of shape \(3,\) and target of "
        r"shape \(3, 1\)",
    ):
        F.mse_loss(cr.tensor(np.ones(3)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(cr.tensor(np.ones(3)), np.ones(3), "max")


def test_l2_penalty_is_half_reg_sum_of_squares_with_gradient_reg_w():
    rng = np.random.default_rng(5)
    w1 = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w2 = cr.tensor(rng.standard_normal(4), requires_grad=True)
    penalty = F.l2_penalty([w1, w2], 0.1)
    expected = 0.05 * (np.sum(w1.data**2) + np.sum(w2.data**2))
    np.testing.assert_allclose(penalty.item(), expected, rtol=1e-14)
    penalty.backward()
    np.testing.assert_allclose(w1.grad, 0.1 * w1.data, rtol=1e-14)
    with pytest.raises(ValueError, match="no parameters"):
        F.l2_penalty([], 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        F.l2_penalty([w1], -1.0)


def test_functional_activations():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(F.leaky_relu(cr.tensor(x), 0.1).data, [-0.2, 0.0, 3.0])
    np.testing.assert_allclose(F.elu(cr.tensor(x)).data, [np.expm1(-2.0), 0.0, 3.0])
    assert F.relu is cr.relu and F.sigmoid is cr.sigmoid and F.tanh is cr.tanh
    with pytest.raises(ValueError, match="probability"):
        F.dropout(cr.tensor(x), 2.0)
    xt = cr.tensor(x)
    assert F.dropout(xt, 0.5, training=False) is xt


def test_fused_gates_stage_with_their_own_backward():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((5, 3)), np.array([0, 1, 2, 0, 1])
    w1, b1, w2 = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 4))

    def loss(w1, b1, w2):
        return F.cross_entropy(F.linear(cr.relu(F.linear(x, w1, b1)), w2), y, "sum")

    staged = cr.stage(loss, w1, b1, w2, wrt=(0, 1, 2))
    value, grads = staged(w1, b1, w2)
    ref_value, ref_grads = cr.value_and_grad(loss, argnums=(0, 1, 2))(w1, b1, w2)
    np.testing.assert_allclose(value, ref_value, rtol=1e-15)
    for got, want in zip(grads, ref_grads):
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_softmax_and_log_softmax_take_pytorchs_dim():
    data = np.random.default_rng(0).standard_normal((3, 4))
    x = cr.tensor(data, requires_grad=True)
    F.softmax(x, dim=1)[:, 0].sum().backward()
    t = torch.tensor(data, requires_grad=True)
    torch.nn.functional.softmax(t, dim=1)[:, 0].sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        F.log_softmax(x, dim=0).data, torch.log_softmax(t, dim=0).detach().numpy(), rtol=1e-12
    )
