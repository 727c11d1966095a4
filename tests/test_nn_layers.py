"""Linear, Sequential, Dropout and Maxout: shapes, PyTorch agreement, gradients and bad input."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn


def test_linear_shapes_and_pytorch_initialization_bounds():
    layer = nn.Linear(16, 4, seed=0)
    assert layer.weight.shape == (4, 16) and layer.bias.shape == (4,)
    assert np.all(np.abs(layer.weight.data) <= 0.25) and np.all(np.abs(layer.bias.data) <= 0.25)
    assert np.array_equal(nn.Linear(16, 4, seed=0).weight.data, layer.weight.data)
    assert not np.array_equal(nn.Linear(16, 4, seed=1).weight.data, layer.weight.data)
    assert nn.Linear(16, 4, bias=False).bias is None


def test_default_generator_is_reseedable():
    nn.init.manual_seed(3)
    a = nn.Linear(3, 3).weight.data.copy()
    nn.init.manual_seed(3)
    assert np.array_equal(nn.Linear(3, 3).weight.data, a)


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_values_and_gradients(shape, bias):
    rng = np.random.default_rng(0)
    ours = nn.Linear(3, 2, bias=bias, seed=0)
    theirs = torch.nn.Linear(3, 2, bias=bias).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape[:-1] + (2,))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_c, out_t = ours(xc), theirs(xt)
    np.testing.assert_allclose(out_c.data, out_t.detach().numpy(), rtol=1e-12)
    out_c.backward(g)
    out_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=1e-12)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, err_msg=name)


def test_linear_gradcheck():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    assert cr.gradcheck(lambda x, w, b: nn.functional.linear(x, w, b), x, w, b)
    assert cr.gradcheck(lambda x, w: nn.functional.linear(x, w), rng.standard_normal((2, 4, 3)), w)


def test_linear_second_derivatives_match_the_composed_gates():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 2)), rng.standard_normal((2, 2))

    def fused(w):
        return (nn.functional.linear(x, w) ** 3).sum()

    def composed(w):
        return (cr.matmul(x, w.T) ** 3).sum()

    np.testing.assert_allclose(cr.hessian(fused)(w), cr.hessian(composed)(w), rtol=1e-10)


def test_linear_bad_shapes_and_sizes():
    layer = nn.Linear(3, 2, seed=0)
    with pytest.raises(cr.GateError, match=r"input of shape \(4, 5\) does not fit weight"):
        layer(np.ones((4, 5)))
    with pytest.raises(cr.GateError, match=r"bias of shape \(3,\)"):
        nn.functional.linear(np.ones((1, 3)), layer.weight, cr.tensor(np.ones(3)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="in_features must be a positive integer"):
            nn.Linear(bad, 2)
    with pytest.raises(ValueError, match="either seed or generator"):
        nn.Linear(2, 2, seed=0, generator=np.random.default_rng())


def test_sequential_names_indexing_and_mapping():
    relu = nn.ReLU()
    seq = nn.Sequential(nn.Linear(2, 3, seed=0), relu)
    assert len(seq) == 2 and seq[1] is relu and seq[-1] is relu
    assert list(seq) == [seq[0], relu]
    assert isinstance(seq[:1], nn.Sequential) and len(seq[:1]) == 1
    seq.append(nn.Linear(3, 1, seed=0))
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    assert seq(np.ones((4, 2))).shape == (4, 1)
    named = nn.Sequential({"fc": nn.Linear(2, 2, seed=0), "act": nn.Tanh()})
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.raises(IndexError, match="index 5 is out of range for 3"):
        seq[5]
    with pytest.raises(TypeError, match="element '0' is a int"):
        nn.Sequential(3)


def test_dropout_is_inverted_and_identity_in_eval():
    x = cr.tensor(np.ones((200, 50)), requires_grad=True)
    drop = nn.Dropout(0.3, seed=0)
    y = drop(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)  # the gradient is the same scaled mask
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, 0.0)
    assert repr(drop) == "Dropout(p=0.3)"
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="probability must be in"):
            nn.Dropout(bad)


def test_dropout_seeded_masks_repeat():
    x = np.ones((5, 5))
    a = nn.Dropout(0.5, seed=4)(cr.tensor(x, requires_grad=True)).data
    b = nn.Dropout(0.5, seed=4)(cr.tensor(x, requires_grad=True)).data
    np.testing.assert_array_equal(a, b)


def test_maxout_takes_the_largest_piece():
    layer = nn.Maxout(3, 2, pieces=4, seed=0)
    assert layer.weight.shape == (8, 3) and layer.bias.shape == (8,)
    x = np.random.default_rng(0).standard_normal((5, 3))
    z = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, z.reshape(5, 2, 4).max(axis=2))
    assert repr(layer) == "Maxout(in_features=3, out_features=2, pieces=4, bias=True)"
    with pytest.raises(ValueError, match="pieces must be a positive integer"):
        nn.Maxout(3, 2, pieces=0)


def module_gradcheck(module, x, seed=0):
    """Gradients of a projected output with respect to the input and to every parameter, from
    backward, against centered differences."""
    assert cr.gradcheck(lambda t: module(t), x)
    v = np.random.default_rng(seed).standard_normal(module(x).shape)
    for name, p in module.named_parameters():
        module.zero_grad()
        (module(x) * v).sum().backward()
        analytic, original = p.grad.copy(), p.data.copy()

        def f(t, p=p):
            p.data[...] = t.data
            return (module(x) * v).sum()

        numeric = cr.numerical_grad(f, original)
        p.data[...] = original
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Linear(3, 2, seed=0),
        lambda: nn.Linear(3, 2, bias=False, seed=0),
        lambda: nn.Maxout(3, 2, pieces=3, seed=1),
        lambda: nn.Sequential(
            nn.Linear(3, 4, seed=2),
            nn.Tanh(),
            nn.Maxout(4, 2, 2, seed=3),
            nn.ELU(),
            nn.Linear(2, 2, seed=4),
            nn.Sigmoid(),
        ),
    ],
)
def test_every_layer_passes_gradcheck(make):
    module_gradcheck(make(), np.random.default_rng(1).standard_normal((4, 3)))


def test_dropout_gradcheck_with_a_fixed_mask():
    x = np.random.default_rng(2).standard_normal((4, 5))
    assert cr.gradcheck(lambda t: nn.functional.dropout(t, 0.4, seed=7), x)
