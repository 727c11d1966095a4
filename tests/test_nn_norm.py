"""Batch, layer and group normalization (gates and modules), buffers in the state dict,
train()/eval(), and the composed layers Embedding, RNNCell, LSTMCell and Identity: values,
gradients and second derivatives against PyTorch, gradcheck, clear errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare, compare_second_order

import chainrule as cr
from chainrule.nn import functional as F

TF = torch.nn.functional


def _inputs(rng, shape, c, dtype, affine):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    if not affine:
        return [x]
    return [x, rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)]


@given(
    shape=st.sampled_from([(4, 3), (3, 2, 5), (2, 3, 2, 3)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    affine=st.booleans(),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_matches_torch_in_train_and_eval(shape, dtype, affine, training, seed):
    rng = np.random.default_rng(seed)
    inputs = _inputs(rng, shape, shape[1], dtype, affine)
    mean = rng.standard_normal(shape[1]).astype(dtype)
    var = rng.uniform(0.5, 2.0, shape[1]).astype(dtype)
    ours_stats, their_stats = [mean.copy(), var.copy()], [torch.tensor(mean), torch.tensor(var)]
    compare(
        lambda x, *wb: F.batch_norm(x, *ours_stats, *wb, training=training),
        lambda x, *wb: TF.batch_norm(x, *their_stats, *wb, training=training),
        *inputs,
        scale=10.0,
    )
    for ours, theirs in zip(ours_stats, their_stats):  # the running statistics, updated
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-6)


@given(
    case=st.sampled_from([((4, 3), (3,)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4))]),
    dtype=st.sampled_from([np.float32, np.float64]),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_matches_torch(case, dtype, affine, seed):
    shape, norm = case
    inputs = _inputs(np.random.default_rng(seed), shape, norm, dtype, affine)
    compare(
        lambda x, *wb: F.layer_norm(x, norm, *wb),
        lambda x, *wb: TF.layer_norm(x, norm, *wb),
        *inputs,
        scale=10.0,
    )


@given(
    case=st.sampled_from([((2, 4, 3), 2), ((3, 6, 2, 2), 3), ((2, 4), 4), ((2, 4, 3), 1)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_group_norm_matches_torch(case, dtype, affine, seed):
    shape, groups = case
    inputs = _inputs(np.random.default_rng(seed), shape, shape[1], dtype, affine)
    compare(
        lambda x, *wb: F.group_norm(x, groups, *wb),
        lambda x, *wb: TF.group_norm(x, groups, *wb),
        *inputs,
        scale=10.0,
    )


@settings(max_examples=5)
@given(seed=st.integers(0, 2**16))
def test_normalization_second_derivatives_match_torch(seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    compare_second_order(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, True) ** 2,
        lambda x, w, b: TF.batch_norm(x, None, None, w, b, True) ** 2,
        x,
        w,
        b,
    )
    lw, lb = rng.standard_normal(2), rng.standard_normal(2)
    compare_second_order(
        lambda x, w, b: F.layer_norm(x, 2, w, b) ** 2,
        lambda x, w, b: TF.layer_norm(x, (2,), w, b) ** 2,
        x,
        lw,
        lb,
    )
    compare_second_order(lambda x: F.group_norm(x, 3) ** 3, lambda x: TF.group_norm(x, 3) ** 3, x)


def test_normalization_gradcheck_and_one_gate_each():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    assert cr.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, True), x, w, b)
    assert cr.gradcheck(lambda x: F.layer_norm(x, (3, 2)), x)
    assert cr.gradcheck(lambda x, w, b: F.group_norm(x, 3, w, b), x, w, b)
    out = F.layer_norm(cr.tensor(x, requires_grad=True), (3, 2))
    assert out.gate.name == "layer_norm"  # one gate, not a chain of primitives


def test_batchnorm_module_buffers_train_eval_and_torch_state_dict():
    rng = np.random.default_rng(1)
    ours, theirs = cr.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3).double()
    ours.weight.data[:] = rng.standard_normal(3)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    assert set(ours.state_dict()) == set(theirs.state_dict())
    for _ in range(3):
        x = rng.standard_normal((4, 3, 2, 2))
        np.testing.assert_allclose(
            ours(cr.tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10
        )
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(
        ours(cr.tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10
    )
    restored = cr.nn.BatchNorm2d(3)
    restored.load_state_dict(ours.state_dict())
    np.testing.assert_array_equal(restored.running_var, ours.running_var)
    assert int(restored.num_batches_tracked) == 3
    assert "running_mean" in dict(ours.named_buffers())
    assert all(p is not ours.running_mean for p in ours.parameters())


def test_train_and_eval_switch_dropout_and_batch_norm():
    model = cr.nn.Sequential(cr.nn.Linear(4, 4, seed=0), cr.nn.BatchNorm1d(4), cr.nn.Dropout(0.5))
    x = cr.tensor(np.random.default_rng(2).standard_normal((8, 4)))
    model.eval()
    assert not any(m.training for m in model.modules())
    a, b = model(x).data, model(x).data
    np.testing.assert_array_equal(a, b)  # no dropout, running statistics: deterministic
    assert int(model[1].num_batches_tracked) == 0
    model.train()
    assert not np.array_equal(model(x).data, model(x).data)
    assert int(model[1].num_batches_tracked) == 2


def test_momentum_none_is_a_cumulative_average_and_untracked_uses_batch_stats():
    rng = np.random.default_rng(3)
    ours, theirs = cr.nn.BatchNorm1d(2, momentum=None), torch.nn.BatchNorm1d(2, momentum=None)
    theirs = theirs.double()
    for _ in range(3):
        x = rng.standard_normal((5, 2))
        ours(cr.tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    plain = cr.nn.BatchNorm1d(2, track_running_stats=False).eval()
    x = rng.standard_normal((5, 2))
    np.testing.assert_allclose(plain(cr.tensor(x)).data.mean(axis=0), 0, atol=1e-12)
    assert "running_mean" not in plain.state_dict()


def test_layernorm_and_groupnorm_modules_match_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 3))
    for ours, theirs in [
        (cr.nn.LayerNorm((4, 3)), torch.nn.LayerNorm((4, 3))),
        (cr.nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
    ]:
        ours.weight.data[:] = rng.standard_normal(ours.weight.shape)
        theirs.double().load_state_dict(
            {k: torch.from_numpy(v) for k, v in ours.state_dict().items()}
        )
        np.testing.assert_allclose(
            ours(cr.tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10
        )


def test_embedding_rnncell_lstmcell_identity_match_torch():
    rng = np.random.default_rng(5)
    emb = cr.nn.Embedding(5, 3, padding_idx=0, seed=0)
    temb = torch.nn.Embedding(5, 3, padding_idx=0).double()
    temb.load_state_dict({"weight": torch.from_numpy(emb.weight.data)})
    idx = np.array([[0, 2], [4, 2]])
    out, tout = emb(idx), temb(torch.from_numpy(idx))
    g = rng.standard_normal(out.shape)
    out.backward(g), tout.backward(torch.from_numpy(g))
    np.testing.assert_allclose(emb.weight.grad, temb.weight.grad.numpy(), rtol=1e-12)
    assert np.all(emb.weight.data[0] == 0)

    x, h, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    for ours, theirs, state in [
        (cr.nn.RNNCell(4, 5, seed=1), torch.nn.RNNCell(4, 5), (h,)),
        (
            cr.nn.RNNCell(4, 5, nonlinearity="relu", seed=1),
            torch.nn.RNNCell(4, 5, nonlinearity="relu"),
            (h,),
        ),
        (cr.nn.LSTMCell(4, 5, seed=2), torch.nn.LSTMCell(4, 5), ((h, c),)),
    ]:
        theirs.double().load_state_dict(
            {k: torch.from_numpy(v) for k, v in ours.state_dict().items()}
        )
        mine = ours(cr.tensor(x), *state)
        ref = theirs(
            torch.from_numpy(x),
            *[
                tuple(map(torch.from_numpy, s)) if isinstance(s, tuple) else torch.from_numpy(s)
                for s in state
            ],
        )
        mine = mine if isinstance(mine, tuple) else (mine,)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for m, r in zip(mine, ref):
            np.testing.assert_allclose(m.data, r.detach().numpy(), rtol=1e-10)
        unbatched = ours(cr.tensor(x[0]))
        first = unbatched[0] if isinstance(unbatched, tuple) else unbatched
        assert first.shape == (5,)
    cell = cr.nn.LSTMCell(2, 3, seed=0)
    assert cr.gradcheck(lambda x: cell(x)[0].sum() + cell(x)[1].sum(), rng.standard_normal((2, 2)))
    assert cr.nn.Identity(3, foo=1)(x) is x


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: F.batch_norm(np.zeros((1, 3)), None, None, training=True), "more than one value"),
        (lambda: F.batch_norm(np.zeros((4, 3)), None, None), "running_mean and running_var"),
        (lambda: F.batch_norm(np.zeros((4, 3)), np.zeros(2), np.ones(3)), "running_mean"),
        (lambda: F.batch_norm(np.zeros(4), None, None, training=True), "input must be"),
        (lambda: F.layer_norm(np.zeros((2, 3)), (2,)), "trailing dimensions"),
        (lambda: F.layer_norm(np.zeros((2, 3)), (3,), np.ones(2)), "weight of shape"),
        (lambda: F.group_norm(np.zeros((2, 4)), 3), "divisor"),
        (lambda: F.layer_norm(np.zeros((2, 3)), (3,), eps=-1.0), "eps"),
        (lambda: cr.nn.BatchNorm2d(3)(cr.zeros(2, 3)), "4-D"),
        (lambda: cr.nn.GroupNorm(3, 4), "divisible"),
        (lambda: cr.nn.Embedding(3, 2)(np.array([3])), "out of range"),
        (lambda: cr.nn.Embedding(3, 2)(np.array([0.5])), "integers"),
        (lambda: cr.nn.LSTMCell(3, 2)(np.zeros((2, 4))), "input_size"),
    ],
)
def test_bad_arguments_are_refused_clearly(call, message):
    with pytest.raises((cr.GateError, ValueError, TypeError, IndexError), match=message):
        call()
