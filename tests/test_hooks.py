"""Tensor.register_hook and Value.register_hook follow PyTorch's semantics: called once with the
complete gradient (summed over forks), may return a replacement, run in registration order, and
are removed by their handle; on leaves they run before the gradient is added to ``.grad``."""

import numpy as np
import torch

import chainrule as cr
from chainrule import engine


def _both(build, hooks_for):
    """Run ``build`` in chainrule and PyTorch, registering the same hooks; return both results."""
    out = []
    for lib, make in (("cr", lambda d: cr.tensor(d, requires_grad=True)), ("torch", None)):
        if lib == "torch":
            make = lambda d: torch.tensor(d, requires_grad=True)  # noqa: E731
        log = []
        x = make(np.array([1.0, -2.0, 3.0]))
        mid, loss = build(x)
        for node, hook in hooks_for(x, mid, log):
            node.register_hook(hook)
        loss.backward()
        grad = x.grad.numpy() if lib == "torch" else x.grad
        out.append(
            (np.asarray(grad), [np.asarray(g.numpy() if lib == "torch" else g) for g in log])
        )
    return out


def _fork(x):
    mid = x * 2
    return mid, (mid * mid + mid.tanh() * 3 + mid).sum()  # mid fans out to four uses


def test_a_hook_on_a_fork_sees_the_summed_gradient_once():
    (mine, mlog), (theirs, tlog) = _both(_fork, lambda x, mid, log: [(mid, log.append)])
    assert len(mlog) == len(tlog) == 1
    np.testing.assert_allclose(mlog[0], tlog[0], rtol=1e-12)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_hooks_replace_the_gradient_in_registration_order():
    def hooks(x, mid, log):
        return [
            (mid, lambda g: (log.append(g), g * 10)[1]),
            (mid, lambda g: (log.append(g), None)[1]),  # None keeps the gradient
            (mid, lambda g: g + 1),
            (x, lambda g: (log.append(g), g * -1)[1]),
        ]

    (mine, mlog), (theirs, tlog) = _both(_fork, hooks)
    assert len(mlog) == len(tlog) == 3
    for a, b in zip(mlog, tlog):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_leaf_hooks_run_before_accumulation_and_grads_still_accumulate():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.copy()) or g * 2)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [12.0, 12.0])
    assert len(seen) == 2 and all((s == 3).all() for s in seen)


def test_removed_hooks_are_not_called_and_removal_is_idempotent():
    x = cr.tensor([1.0], requires_grad=True)
    calls = []
    handle = x.register_hook(calls.append)
    handle.remove()
    handle.remove()
    (x * 2).sum().backward()
    assert calls == [] and x.grad[0] == 2.0
    mid = x * 2
    with mid.register_hook(calls.append):
        pass
    mid.sum().backward()
    assert calls == []


def test_retain_grad_sees_the_hooked_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    mid = x * 2
    mid.retain_grad()
    mid.register_hook(lambda g: g * 5)
    mid.sum().backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    tmid = tx * 2
    tmid.retain_grad()
    tmid.register_hook(lambda g: g * 5)
    tmid.sum().backward()
    np.testing.assert_array_equal(mid.grad, tmid.grad.numpy())
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_a_hook_on_the_output_sees_the_seed():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    seen = []
    y.register_hook(lambda g: seen.append(float(g)))
    y.backward()
    assert seen == [1.0]


def test_value_hooks_work_as_tensor_hooks():
    a = cr.Value(2.0)
    b = a * a
    seen = []
    b.register_hook(lambda g: seen.append(g) or g * 3)
    a.register_hook(lambda g: seen.append(g))
    (b + b).backward()
    assert seen == [2.0, 24.0] and a.grad == 24.0


def test_hooks_need_a_value_that_requires_grad_and_a_callable():
    import pytest

    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor([1.0]).register_hook(print)
    with pytest.raises(TypeError, match="callable"):
        cr.tensor([1.0], requires_grad=True).register_hook(3)


def test_hooks_are_free_when_unused():
    """Nothing is marked unless a hook is registered on a gate output: backward stays tuned."""
    x = cr.tensor([1.0], requires_grad=True)
    x.register_hook(lambda g: g)  # a leaf hook does not need the reference loop
    (x * 2).sum().backward()
    assert not engine._marked
