"""Every built-in gate under cr.jit: a few SGD steps through a jitted step equal eager steps.

The uses of each gate are test_stage.py's table (one use per Gate subclass, checked there to
stage to the engine's values); here the gate's inputs are parameters, read live at each call
and updated between calls, and the gradients reach ``.grad`` through the staged backward.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_stage import GATE_USES, NOT_STAGED, _concrete_gates

import chainrule as cr

# Uses that compute something outside chainrule on purpose, which jit must catch (and then run
# eagerly): the reason its warning gives.
RUNS_EAGERLY = {
    # fresh running statistics made with NumPy at each call and updated in place by the gate
    "BatchNorm": "changes from call to call",
}


def _train(fn, a0, b0, jit: bool):
    a, b = cr.tensor(a0.copy(), requires_grad=True), cr.tensor(b0.copy(), requires_grad=True)
    rng = np.random.default_rng(7)

    def step():
        out = fn(a, b)
        weights = cr.tensor(np.linspace(0.5, 1.5, out.size).reshape(out.shape).astype(out.dtype))
        loss = (out * weights).sum()
        a.grad = b.grad = None
        loss.backward()
        return loss

    run = cr.jit(step) if jit else step
    losses = []
    for _ in range(5):
        losses.append(run().item())
        for p in (a, b):
            if p.grad is not None:
                p.data = p.data - 0.01 * p.grad
        rng.normal()
    return losses, a.data, b.data, run


@pytest.mark.parametrize("gate", _concrete_gates(), ids=lambda c: c.__name__)
def test_every_gate_trains_jitted_as_eager(gate):
    name = gate.__name__
    if name in NOT_STAGED:
        pytest.skip(NOT_STAGED[name])
    fn, shapes = GATE_USES[name]
    if shapes == "pair":
        shapes = ((3, 4), (3, 4))
    rng = np.random.default_rng(sum(map(ord, name)))
    a0, b0 = (rng.normal(size=s) for s in shapes)
    with np.errstate(all="ignore"):
        expected = _train(fn, a0, b0, jit=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _train(fn, a0, b0, jit=True)
    jit_warnings = [str(w.message) for w in caught if issubclass(w.category, cr.JitWarning)]
    if name in RUNS_EAGERLY:
        assert any(RUNS_EAGERLY[name] in m for m in jit_warnings), jit_warnings
    else:
        assert not jit_warnings, jit_warnings
        assert got[3].staged_calls == 3
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=1e-300)
    for g, e in zip(got[1:3], expected[1:3]):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
