"""Batch norm's running statistics in staged code: a staged training step updates the module's
running mean, variance and batch counter exactly as eager steps do (the update is part of the
gate's application, and the staged code holds the module's own arrays), evaluation mode reads
their current values, readers that re-run a gate's forward never update them, and loading or
assigning buffers keeps the arrays the staged code holds."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F

STATS = ("running_mean", "running_var", "num_batches_tracked")


def _loss_of(bn, weights):
    """``sum(bn(x) * weights)`` as a function of x and of the values standing in for the
    module's weight and bias (cr.stage differentiates only with respect to its arguments)."""

    def loss(x, w, b):
        params = bn.weight, bn.bias
        object.__setattr__(bn, "weight", w)
        object.__setattr__(bn, "bias", b)
        try:
            return (bn(x) * weights).sum()
        finally:
            object.__setattr__(bn, "weight", params[0])
            object.__setattr__(bn, "bias", params[1])

    return loss


def _pair(cls, momentum, rng):
    """Two identical modules with random affine parameters and running statistics."""
    a, b = cls(3, momentum=momentum), cls(3, momentum=momentum)
    state = a.state_dict()
    for key in ("weight", "bias", "running_mean"):
        state[key] = rng.standard_normal(3)
    state["running_var"] = rng.uniform(0.5, 2.0, 3)
    a.load_state_dict(state)
    b.load_state_dict(state)
    return a, b, state


@pytest.mark.parametrize(
    "cls,shape,momentum",
    [
        (cr.nn.BatchNorm1d, (6, 3), 0.1),
        (cr.nn.BatchNorm1d, (4, 3, 5), None),
        (cr.nn.BatchNorm2d, (4, 3, 2, 3), 0.3),
        (cr.nn.BatchNorm2d, (2, 3, 2, 2), None),
    ],
)
def test_staged_training_steps_update_running_statistics_as_eager_steps(cls, shape, momentum):
    rng = np.random.default_rng(0)
    staged_bn, eager_bn, state = _pair(cls, momentum, rng)
    weights = rng.standard_normal(shape)
    params = staged_bn.weight.data, staged_bn.bias.data
    staged = cr.stage(
        _loss_of(staged_bn, weights), rng.standard_normal(shape), *params, wrt=(0, 1, 2)
    )
    arrays = [getattr(staged_bn, k) for k in STATS]
    staged_bn.load_state_dict(state)  # undo the tracing call's update, in place
    assert int(staged_bn.num_batches_tracked) == 0
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + step
        value, (dx, dw, db) = staged(x, *params)
        xt = cr.tensor(x, requires_grad=True)
        eager_bn.zero_grad()
        loss = (eager_bn(xt) * weights).sum()
        loss.backward()
        np.testing.assert_allclose(value, loss.data, rtol=1e-15, atol=0)
        for ours, theirs in ((dx, xt.grad), (dw, eager_bn.weight.grad), (db, eager_bn.bias.grad)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-15, atol=1e-15)
        for key in STATS:
            np.testing.assert_allclose(
                getattr(staged_bn, key), getattr(eager_bn, key), rtol=1e-15, atol=0
            )
    assert int(staged_bn.num_batches_tracked) == 3
    assert all(getattr(staged_bn, k) is a for k, a in zip(STATS, arrays))  # the same arrays
    for name in STATS:
        assert f"{name}=" in staged.source or name == "num_batches_tracked"
    assert "read (and updated) in place" in staged.source


def test_staged_evaluation_reads_the_current_running_statistics():
    rng = np.random.default_rng(1)
    staged_bn, eager_bn, state = _pair(cr.nn.BatchNorm2d, 0.1, rng)
    staged_bn.eval(), eager_bn.eval()
    weights = rng.standard_normal((2, 3, 2, 2))
    params = staged_bn.weight.data, staged_bn.bias.data
    staged = cr.stage(
        _loss_of(staged_bn, weights), rng.standard_normal((2, 3, 2, 2)), *params, wrt=(0, 1, 2)
    )
    assert int(staged_bn.num_batches_tracked) == 0  # evaluation mode tracks nothing
    for _ in range(2):  # new statistics, loaded in place between calls
        state["running_mean"], state["running_var"] = rng.standard_normal(3), rng.uniform(1, 3, 3)
        staged_bn.load_state_dict(state)
        eager_bn.load_state_dict(state)
        x = rng.standard_normal((2, 3, 2, 2))
        value, grads = staged(x, *params)
        xt = cr.tensor(x, requires_grad=True)
        eager_bn.zero_grad()
        loss = (eager_bn(xt) * weights).sum()
        loss.backward()
        np.testing.assert_allclose(value, loss.data, rtol=1e-15)
        expected = (xt.grad, eager_bn.weight.grad, eager_bn.bias.grad)
        for ours, theirs in zip(grads, expected):
            np.testing.assert_allclose(ours, theirs, rtol=1e-15, atol=1e-15)


def test_one_update_per_application_and_none_from_readers_after_backward():
    rng = np.random.default_rng(2)
    net = cr.nn.Sequential(cr.nn.Linear(3, 4, seed=0), cr.nn.BatchNorm1d(4), cr.nn.ReLU())
    loss = (net(cr.tensor(rng.standard_normal((5, 3)))) ** 2).sum()
    bn = net[1]
    assert int(bn.num_batches_tracked) == 1
    before = {k: np.array(getattr(bn, k)) for k in STATS}
    loss.backward()  # releases the caches: readers run the gates' forward again
    assert "BN" in str(cr.explain(loss))
    cr.trace(loss).wires[-1].cached  # noqa: B018 (rebuilds a released cache)
    cr.draw(loss)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(bn, key), value)


def test_functional_batch_norm_updates_once_and_refuses_a_bad_momentum_untouched():
    x = cr.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    mean, var = np.zeros(3), np.ones(3)
    F.batch_norm(x, mean, var, training=True, momentum=0.5)
    np.testing.assert_allclose(mean, 0.5 * np.array([4.5, 5.5, 6.5]))
    np.testing.assert_allclose(var, 0.5 + 0.5 * 15.0)
    for momentum in (None, 1.5):
        with pytest.raises(cr.GateError, match="momentum"):
            F.batch_norm(x, mean, var, training=True, momentum=momentum)
    np.testing.assert_allclose(mean, 0.5 * np.array([4.5, 5.5, 6.5]))  # unchanged


def test_buffers_keep_their_arrays_when_loaded_or_assigned():
    bn = cr.nn.BatchNorm1d(3)
    arrays = [getattr(bn, k) for k in STATS]
    bn.num_batches_tracked += 1
    bn.running_mean = np.full(3, 2.0)
    bn.load_state_dict({**bn.state_dict(), "running_var": np.full(3, 3.0)})
    assert all(getattr(bn, k) is a for k, a in zip(STATS, arrays))
    assert int(bn.num_batches_tracked) == 1
    np.testing.assert_array_equal(bn.running_mean, 2.0)
    np.testing.assert_array_equal(bn.running_var, 3.0)
    assert bn.state_dict()["running_mean"] is not bn.running_mean  # a copy, as before
    bn.running_mean = np.zeros(4)  # another shape replaces the buffer
    assert bn.running_mean.shape == (4,) and bn._buffers["running_mean"] is bn.running_mean
