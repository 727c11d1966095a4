"""Module and Parameter: registration, traversal, modes, gradients, state dicts (with PyTorch as
the oracle for keys, shapes and outputs) and repr."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3))
        self.inner = nn.Linear(3, 2, seed=0)
        self.note = "not registered"

    def forward(self, x):
        return self.inner(x * self.scale)


def mlp():
    return nn.Sequential(nn.Linear(4, 5, seed=0), nn.ReLU(), nn.Linear(5, 3, seed=1))


def torch_mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)
    ).double()


def test_parameter_is_a_float_tensor_that_requires_grad():
    p = nn.Parameter([1, 2, 3])
    assert isinstance(p, cr.Tensor)
    assert p.requires_grad and p.is_leaf
    assert p.dtype == np.float64
    source = np.ones(2)
    q = nn.Parameter(source)
    q.data[0] = 5.0
    assert source[0] == 1.0  # the parameter owns a copy
    assert repr(q).startswith("Parameter containing:\ntensor([5., 1.]")


def test_attributes_register_parameters_and_submodules_in_order():
    block = Block()
    assert [name for name, _ in block.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    assert [name for name, _ in block.named_children()] == ["inner"]
    assert [name for name, _ in block.named_modules()] == ["", "inner"]
    assert len(list(block.parameters(recurse=False))) == 1
    assert block.note == "not registered"
    assert "note" not in block.state_dict()


def test_shared_parameter_is_listed_once():
    a = nn.Linear(3, 3, seed=0)
    model = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_assigning_a_plain_value_to_a_parameter_slot_is_an_error():
    layer = nn.Linear(2, 2, seed=0)
    with pytest.raises(TypeError, match="parameter 'weight' of Linear"):
        layer.weight = cr.tensor(np.zeros((2, 2)))
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    model = mlp()
    with pytest.raises(TypeError, match="sub-module '0'"):
        setattr(model, "0", 3)


def test_setattr_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_register_and_delete():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(np.zeros(2)))
    m.add_module("child", nn.ReLU())
    assert [n for n, _ in m.named_parameters()] == ["w"]
    del m.w
    assert list(m.named_parameters()) == []
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("v", np.zeros(2))
    with pytest.raises(TypeError, match="not a Module"):
        m.add_module("x", 3)
    with pytest.raises(KeyError, match="no '.'"):
        m.add_module("a.b", nn.ReLU())


def test_module_without_forward_says_so():
    with pytest.raises(TypeError, match="Module does not define forward"):
        nn.Module()(1)


def test_train_and_eval_reach_every_descendant():
    model = nn.Sequential(nn.Linear(2, 2, seed=0), nn.Sequential(nn.Dropout(0.5)))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(TypeError, match="bool"):
        model.train("no")


def test_zero_grad_after_backward():
    model = mlp()
    model(np.ones((2, 4))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_keys_and_shapes_match_torch():
    ours, theirs = mlp().state_dict(), torch_mlp().state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == tuple(theirs[k].shape) for k in ours)


def test_state_dict_is_a_copy():
    model = mlp()
    state = model.state_dict()
    state["0.weight"][...] = 7.0
    assert not np.any(model[0].weight.data == 7.0)


def test_torch_weights_load_into_chainrule_and_back_with_the_same_outputs():
    torch.manual_seed(0)
    theirs = torch_mlp()
    ours = mlp()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 4))
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(x).data, expected, rtol=1e-12, atol=1e-14)

    fresh = torch_mlp()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(
        fresh(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-12, atol=1e-14
    )


def test_load_state_dict_accepts_tensors_and_casts_ints():
    layer = nn.Linear(2, 2, seed=0)
    layer.load_state_dict({"weight": cr.tensor([[1.0, 2.0], [3.0, 4.0]]), "bias": np.array([1, 2])})
    assert layer.bias.data.dtype == np.float64
    np.testing.assert_array_equal(layer.bias.data, [1.0, 2.0])


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: s.pop("2.bias"), "missing key\\(s\\): '2.bias'"),
        (lambda s: s.update(extra=np.zeros(1)), "unexpected key\\(s\\): 'extra'"),
        (
            lambda s: s.update({"0.weight": np.zeros((4, 5))}),
            "'0.weight' has shape \\(4, 5\\) but the parameter has shape \\(5, 4\\)",
        ),
        (lambda s: s.update({"0.bias": np.array(["a"] * 5)}), "'0.bias' has dtype <U1"),
    ],
)
def test_bad_state_dict_is_refused_and_leaves_the_model_unchanged(change, message):
    model = mlp()
    before = model.state_dict()
    state = {k: v + 1.0 for k, v in before.items()}
    change(state)
    with pytest.raises(nn.StateDictError, match=message):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_non_strict_load_reports_what_it_skipped():
    model = mlp()
    state = model.state_dict()
    del state["2.bias"]
    state["other"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["other"]
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([("0.weight", 1)])


def test_repr_matches_torch():
    ours = nn.Sequential(
        nn.Linear(2, 100, seed=0),
        nn.ReLU(),
        nn.Linear(100, 3, bias=False),
        nn.Sigmoid(),
        nn.Tanh(),
        nn.LeakyReLU(0.2),
        nn.ELU(0.5),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(2, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 3, bias=False),
        torch.nn.Sigmoid(),
        torch.nn.Tanh(),
        torch.nn.LeakyReLU(0.2),
        torch.nn.ELU(0.5),
    )
    assert repr(ours) == repr(theirs)
    assert repr(nn.Sequential(nn.Sequential(nn.ReLU()))) == (
        "Sequential(\n  (0): Sequential(\n    (0): ReLU()\n  )\n)"
    )


def test_deepcopy_is_an_independent_snapshot():
    import copy

    model = mlp()
    snapshot = copy.deepcopy(model)
    model[0].weight.data[...] = 0.0
    assert np.any(snapshot[0].weight.data != 0)
    assert snapshot[0].weight is snapshot[0]._parameters["weight"]
    assert isinstance(snapshot[0].weight, nn.Parameter)


def test_float32_parameters_stay_float32_through_a_training_step():
    model = nn.Sequential(
        nn.Linear(3, 4, dtype=np.float32, seed=0),
        nn.ReLU(),
        nn.Linear(4, 2, dtype=np.float32, seed=1),
    )
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.ones((5, 3), dtype=np.float32)
    loss = nn.functional.cross_entropy(model(x), np.array([0, 1, 0, 1, 0]))
    assert loss.dtype == np.float32
    loss.backward()
    opt.step()
    assert all(
        p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters()
    )
