"""Training with ``cr.jit``: ``Trainer(jit=True)`` and ``chainrule train`` run their steps staged,
and the parameters (and batch-norm buffers) come out as eager training leaves them (float64,
1e-12 relative) for every model the CLI trains; the guards that keep a staged step honest when
the model changes under it (a replaced layer, a hook, anomaly mode)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F


def _net(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, 3, generator=rng), nn.ReLU(), nn.Linear(3, 2, generator=rng))


def _jitted_step(model):
    @cr.jit
    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        return loss

    return step


def _staged(model, x, y):
    step = _jitted_step(model)
    for _ in range(3):
        step(x, y)
    assert step.staged_calls == 1
    return step


_X = np.random.default_rng(1).standard_normal((5, 4))
_Y = np.array([0, 1, 0, 1, 1])


# --- the guards of a staged step -----------------------------------------------------------------
def test_a_layer_replaced_after_staging_is_used():
    model = _net()
    step = _staged(model, _X, _Y)
    model.add_module("2", nn.Linear(3, 2, generator=np.random.default_rng(5)))
    expected = F.cross_entropy(model(_X), _Y).item()
    assert step(_X, _Y).item() == expected


def test_a_forward_hook_added_after_staging_is_called_not_skipped():
    model = _net()
    step = _staged(model, _X, _Y)
    calls = []
    model[0].register_forward_hook(lambda module, args, out: calls.append(out.shape))
    with pytest.warns(cr.JitWarning, match="hook"):
        step(_X, _Y)
    step(_X, _Y)
    assert calls == [(5, 3), (5, 3)]


def test_anomaly_mode_runs_the_step_eagerly_so_each_gate_is_checked():
    model = _net()
    step = _staged(model, _X, _Y)
    with cr.detect_anomaly():
        step(_X, _Y)
    assert step.eager_calls == 1 and step.staged_calls == 1
    model[0].weight.data[0, 0] = np.nan
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError):
        step(_X, _Y)
