"""Module hooks against PyTorch's: forward pre-hooks and forward hooks (order, prepend,
replacement, removal, kwargs) and full backward hooks (grad_input/grad_output values, call order,
replacement, pre-hooks, forks inside a module, unused and non-tensor inputs, bad returns)."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.engine import gradients


def pair(seed=0):
    """The same 4-5-3 tanh MLP in chainrule and PyTorch."""
    ours = nn.Sequential(nn.Linear(4, 5, seed=seed), nn.Tanh(), nn.Linear(5, 3, seed=seed + 1))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def as_numpy(grads):
    return [
        None if g is None else np.asarray(g.detach() if torch.is_tensor(g) else g) for g in grads
    ]


def run_both(hook_ours, hook_theirs, x_requires_grad=True, register="register_full_backward_hook"):
    """Register the hooks on every child of both models, run forward and backward on the same
    data; returns both logs and the input gradients."""
    ours, theirs = pair()
    x = np.random.default_rng(1).standard_normal((6, 4))
    logs = ([], [])
    for (name, m), (_, t) in zip(ours.named_children(), theirs.named_children()):
        getattr(m, register)(lambda mod, *g, n=name: hook_ours(logs[0], n, *g))
        getattr(t, register)(lambda mod, *g, n=name: hook_theirs(logs[1], n, *g))
    xo = cr.tensor(x, requires_grad=x_requires_grad)
    xt = torch.tensor(x, requires_grad=x_requires_grad)
    (ours(xo) ** 2).sum().backward()
    (theirs(xt) ** 2).sum().backward()
    return logs, xo, xt


def record(log, name, *grads):
    log.append((name, *(as_numpy(g) for g in grads)))


def assert_logs_equal(ours, theirs):
    assert [entry[0] for entry in ours] == [entry[0] for entry in theirs]
    for a, b in zip(ours, theirs):
        for ga, gb in zip(a[1:], b[1:]):
            assert len(ga) == len(gb)
            for u, v in zip(ga, gb):
                assert (u is None) == (v is None)
                if u is not None:
                    np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)


# --- forward hooks -------------------------------------------------------------------------------
def test_forward_hooks_see_inputs_and_outputs_in_order_and_can_be_removed():
    ours, theirs = pair()
    calls = {"ours": [], "theirs": []}
    for key, model in (("ours", ours), ("theirs", theirs)):
        for name, child in model.named_children():
            child.register_forward_pre_hook(lambda m, a, n=name, k=key: calls[k].append(f"pre {n}"))
            child.register_forward_hook(lambda m, a, o, n=name, k=key: calls[k].append(f"post {n}"))
        handle = model[1].register_forward_hook(
            lambda m, a, o, k=key: calls[k].append("first"), prepend=True
        )
        if key == "ours":
            first = handle
    x = np.ones((2, 4))
    ours(cr.tensor(x))
    theirs(torch.tensor(x))
    assert calls["ours"] == calls["theirs"]
    assert calls["ours"][:5] == ["pre 0", "post 0", "pre 1", "first", "post 1"]
    first.remove()
    first.remove()  # twice is harmless
    calls["ours"].clear()
    ours(cr.tensor(x))
    assert "first" not in calls["ours"]


def test_forward_hook_values_match_pytorch_and_replacements_take_effect():
    ours, theirs = pair()
    seen = {}
    ours[1].register_forward_hook(lambda m, a, o: seen.update(ours=(a[0].data, o.data)))
    theirs[1].register_forward_hook(lambda m, a, o: seen.update(theirs=(a[0], o)))
    # a pre-hook returning a bare value replaces the (only) argument; a forward hook the output
    ours[0].register_forward_pre_hook(lambda m, a: a[0] * 2)
    theirs[0].register_forward_pre_hook(lambda m, a: a[0] * 2)
    ours[2].register_forward_hook(lambda m, a, o: o + 1)
    theirs[2].register_forward_hook(lambda m, a, o: o + 1)
    x = np.random.default_rng(0).standard_normal((3, 4))
    out_ours, out_theirs = ours(cr.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out_ours.data, out_theirs.detach().numpy(), rtol=1e-12)
    for a, b in zip(seen["ours"], seen["theirs"]):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12)


def test_hooks_with_kwargs_and_handle_as_context_manager():
    class Scale(nn.Module):
        def forward(self, x, *, factor=1.0):
            return x * factor

    m = Scale()
    seen = []
    m.register_forward_pre_hook(lambda mod, a, kw: (a, {"factor": 3.0}), with_kwargs=True)
    m.register_forward_hook(lambda mod, a, kw, out: seen.append(kw), with_kwargs=True)
    assert m(cr.tensor([1.0, 2.0]), factor=5.0).data.tolist() == [3.0, 6.0]
    assert seen == [{"factor": 3.0}]
    with m.register_forward_hook(lambda mod, a, out: out * 0):
        assert m(cr.tensor([1.0])).data.tolist() == [0.0]
    assert m(cr.tensor([1.0])).data.tolist() == [3.0]


def test_bad_hooks_are_refused_with_the_module_named():
    m = nn.ReLU()
    with pytest.raises(TypeError, match="must be callable"):
        m.register_forward_hook("not a function")
    m.register_forward_pre_hook(lambda mod, a, kw: "nonsense", with_kwargs=True)
    with pytest.raises(TypeError, match="ReLU.*args, kwargs"):
        m(cr.tensor([1.0]))


# --- full backward hooks -------------------------------------------------------------------------
def test_full_backward_hooks_match_pytorch_values_and_order():
    logs, xo, xt = run_both(record, record)
    assert [entry[0] for entry in logs[0]] == ["2", "1", "0"]
    assert_logs_equal(*logs)
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10)


def test_first_layer_hook_fires_with_none_when_the_input_needs_no_grad():
    with pytest.warns(UserWarning):  # PyTorch warns about exactly this case; chainrule does not
        logs, _, _ = run_both(record, record, x_requires_grad=False)
    assert logs[0][-1][1] == [None]
    assert_logs_equal(*logs)


def test_backward_pre_hooks_match_pytorch():
    logs, xo, xt = run_both(record, record, register="register_full_backward_pre_hook")
    assert_logs_equal(*logs)


def test_replacing_grad_input_and_grad_output_changes_what_flows_on():
    def double_input(log, name, grad_input, grad_output):
        if name == "1":
            return tuple(None if g is None else g * 2 for g in grad_input)

    def halve_output(log, name, grad_output):
        if name == "2":
            return (grad_output[0] / 2,)

    for register, fn in (
        ("register_full_backward_hook", double_input),
        ("register_full_backward_pre_hook", halve_output),
    ):
        _, xo, xt = run_both(fn, fn, register=register)
        np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10)
    reference = run_both(lambda *a: None, lambda *a: None)[1]
    np.testing.assert_allclose(xo.grad * 2, reference.grad, rtol=1e-10)


class Mix(torch.nn.Module):
    """Two tensor inputs, one of them used twice (a fork), one unused, and a number."""

    def forward(self, a, b, unused, k):
        return a * b + a * k


class MixOurs(nn.Module):
    def forward(self, a, b, unused, k):
        return a * b + a * k


def test_several_inputs_forks_and_unused_inputs_match_pytorch():
    rng = np.random.default_rng(2)
    values = [rng.standard_normal(3) for _ in range(3)]
    logs = ([], [])
    ours, theirs = MixOurs(), Mix()
    ours.register_full_backward_hook(lambda m, gi, go: record(logs[0], "mix", gi, go))
    theirs.register_full_backward_hook(lambda m, gi, go: record(logs[1], "mix", gi, go))
    ins_ours = [cr.tensor(v, requires_grad=True) for v in values]
    ins_theirs = [torch.tensor(v, requires_grad=True) for v in values]
    (ours(*ins_ours, 3.0) ** 2).sum().backward()
    (theirs(*ins_theirs, 3.0) ** 2).sum().backward()
    assert_logs_equal(*logs)
    assert logs[0][0][1][3] is None  # the number's slot
    for a, b in zip(ins_ours, ins_theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10)


def test_removed_backward_hook_is_not_called_and_unhooked_module_records_no_hook_gates():
    m = nn.Tanh()
    calls = []
    handle = m.register_full_backward_hook(lambda mod, gi, go: calls.append(1))
    x = cr.tensor([0.5, -0.5], requires_grad=True)
    m(x).sum().backward()
    handle.remove()
    y = m(x)
    assert y.gate is not None and y.gate.name == "tanh"
    y.sum().backward()
    assert calls == [1]


def test_backward_hooks_pass_nodes_under_create_graph():
    m = nn.Tanh()
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(type(gi[0])))
    x = cr.tensor([0.3, 0.7], requires_grad=True)
    y = m(x).sum()
    (gx,) = gradients(y, [x], create_graph=True)
    assert issubclass(seen[-1], cr.Tensor)
    (ggx,) = gradients(gx.sum(), [x])
    xt = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.tanh(xt).sum(), [xt], create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), [xt])
    np.testing.assert_allclose(ggx, ggt.numpy(), rtol=1e-12)


def test_bad_backward_hook_returns_are_refused_with_the_module_named():
    m = nn.Tanh()
    m.register_full_backward_hook(lambda mod, gi, go: (np.zeros(5),))
    x = cr.tensor([0.5, -0.5], requires_grad=True)
    with pytest.raises(ValueError, match=r"Tanh: grad_input\[0\] must be a gradient of shape"):
        m(x).sum().backward()
    m2 = nn.Tanh()
    m2.register_full_backward_pre_hook(lambda mod, go: go[0])
    with pytest.raises(ValueError, match="Tanh: must return None or a tuple of 1"):
        m2(x).sum().backward()

    class Two(nn.Module):
        def forward(self, x):
            return x, x

    two = Two()
    two.register_full_backward_hook(lambda mod, gi, go: None)
    with pytest.raises(TypeError, match="Two has backward hooks but returned a tuple"):
        two(x)
