"""Dropout's mask is a gate of its own (``dropout_mask``), drawn at each application: eagerly the
same draws as the former NumPy formula, and in staged code at each call from the bound generator
(never the traced mask frozen); readers show it and never draw again."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.engine import GateError
from chainrule.ops import random as cr_random
from chainrule.ops.random import dropout_mask

F = nn.functional


def _old_dropout(x: np.ndarray, p: float, generator: np.random.Generator) -> np.ndarray:
    """Dropout as it was computed before the mask became a gate."""
    keep = generator.random(x.shape) >= p
    return x * (keep / (1.0 - p)).astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eager_draws_are_the_former_formulas_bit_for_bit(dtype):
    x = np.random.default_rng(9).standard_normal((5, 7)).astype(dtype)
    new, old = np.random.default_rng(3), np.random.default_rng(3)
    for p in (0.5, 0.2, 0.9):  # the stream continues from call to call
        y = F.dropout(cr.tensor(x, requires_grad=True), p, generator=new)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y.data, _old_dropout(x, p, old))
    layer, old = nn.Dropout(0.3, seed=4), np.random.default_rng(4)
    for _ in range(2):
        np.testing.assert_array_equal(layer(cr.tensor(x)).data, _old_dropout(x, 0.3, old))
    seeded = [F.dropout(cr.tensor(x), 0.4, seed=7).data for _ in range(2)]  # a fresh stream each
    for y in seeded:
        np.testing.assert_array_equal(y, _old_dropout(x, 0.4, np.random.default_rng(7)))
    cr.nn.init.manual_seed(11)
    np.testing.assert_array_equal(
        F.dropout(cr.tensor(x), 0.5).data, _old_dropout(x, 0.5, np.random.default_rng(11))
    )
    np.testing.assert_array_equal(
        dropout_mask(x, 0.5, 2), _old_dropout(np.ones_like(x), 0.5, np.random.default_rng(2))
    )


def _loss(generator):
    w = np.linspace(-1.0, 1.0, 12).reshape(4, 3)

    def f(x, v):
        h = F.dropout(cr.tanh(x @ v), 0.5, generator=generator)
        return (h * w).sum()

    return f


def test_staged_calls_draw_on_from_the_generator_as_eager_calls_do():
    x = np.random.default_rng(0).standard_normal((4, 2))
    v = np.random.default_rng(1).standard_normal((2, 3))
    bound, reference = np.random.default_rng(5), np.random.default_rng(5)
    staged = cr.stage(_loss(bound), x, v, wrt=(0, 1))
    assert "dropout_mask_forward(" in staged.source and ", generator)" in staged.source
    assert "# generator: the traced np.random.Generator, live" in staged.source
    eager = cr.value_and_grad(_loss(reference), (0, 1))
    eager(x, v)  # tracing was a call: it drew the first mask
    frozen = staged(x, v)[1][1].copy()
    eager(x, v)
    assert not np.array_equal(frozen, staged(x, v)[1][1])  # not the traced mask again
    eager(x, v)
    for k in range(3):
        point = (x + k, v * (k + 1))
        value, grads = staged(*point)
        expected_value, expected_grads = eager(*point)
        assert value == expected_value
        for g, e in zip(grads, expected_grads):
            np.testing.assert_array_equal(g, e)
    assert bound.bit_generator.state == reference.bit_generator.state


def test_a_seed_stages_as_the_same_mask_each_call_and_none_as_the_default_at_call_time():
    x = np.random.default_rng(0).standard_normal((6, 5))

    def seeded(x):
        return (F.dropout(x, 0.5, seed=3) * x).sum()

    def default(x):
        return (F.dropout(x, 0.5) * x).sum()

    staged = cr.stage(seeded, x)
    assert "dropout_mask_forward(x, 0.5, 3)" in staged.source
    eager = cr.value_and_grad(seeded)
    for _ in range(2):
        value, grad = staged(x)
        expected_value, expected_grad = eager(x)
        assert value == expected_value
        np.testing.assert_array_equal(grad, expected_grad)
    staged = cr.stage(default, x)
    assert "dropout_mask_forward(x, 0.5, None)" in staged.source
    eager = cr.value_and_grad(default)
    for _ in range(2):
        cr.nn.init.manual_seed(21)  # reseeding after staging is seen by the staged code
        value, grad = staged(x)
        cr.nn.init.manual_seed(21)
        np.testing.assert_array_equal(grad, eager(x)[1])


def test_dropout_in_eval_mode_stages_as_the_identity_and_float32_keeps_its_dtype():
    model = nn.Sequential(nn.Tanh(), nn.Dropout(0.5, seed=1))
    x = np.random.default_rng(2).standard_normal((5, 3))

    def loss(x):
        return model(x).sum()

    model.eval()
    staged = cr.stage(loss, x)
    assert "dropout_mask" not in staged.source
    value, grad = staged(x)
    expected_value, expected_grad = cr.value_and_grad(loss)(x)
    assert value == expected_value
    np.testing.assert_array_equal(grad, expected_grad)

    model.train()
    x32 = x.astype(np.float32)
    rng = np.random.default_rng(6)
    staged = cr.stage(lambda x: (F.dropout(x, 0.25, generator=rng) * x).sum(), x32)
    value, grad = staged(x32)
    assert value.dtype == np.float32 and grad.dtype == np.float32
    assert set(np.unique(grad / (2 * x32)).round(5)) <= {0.0, np.float32(1 / 0.75).round(5)}


def test_readers_show_the_mask_gate_feeding_a_multiply_and_never_draw_again(monkeypatch):
    runs = []
    kernel = cr_random.dropout_mask_forward

    def counting(*args):
        runs.append(args)
        return kernel(*args)

    monkeypatch.setattr(cr_random, "dropout_mask_forward", counting)
    rng = np.random.default_rng(0)
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = cr.tensor(np.ones((3, 2)), requires_grad=True)
    loss = (F.dropout(x, 0.5, generator=rng) @ w).sum()
    assert len(runs) == 1
    loss.backward()  # releases the caches of the gates it visits
    state = rng.bit_generator.state
    circuit = cr.trace(loss)
    (mask,) = [wire for wire in circuit.gates if wire.gate.name == "dropout_mask"]
    (mul,) = [w for w in circuit.gates if any(i is mask for i in circuit.inputs_of(w))]
    assert mul.gate.name == "mul" and mask.label == "mask"
    for wire in circuit.gates:
        wire.cached  # noqa: B018 - recomputes every released cache
    circuit.backward_steps()
    rows = cr.explain(loss).rows
    assert any(row.gate == "mul" and mask.name in row.inputs for row in rows)
    dot = cr.draw(loss).dot
    assert 'label="mask"' in dot and 'tooltip="dropout_mask: ' in dot
    assert len(runs) == 1 and rng.bit_generator.state == state


def test_bad_masks_are_refused_by_the_gates_name():
    x = cr.tensor(np.ones(3), requires_grad=True)
    for p in (1.0, -0.1, float("nan")):
        with pytest.raises(
            GateError, match=r"gate 'dropout_mask': probability must be in \[0, 1\)"
        ):
            dropout_mask(x, p)
    with pytest.raises(GateError, match="gate 'dropout_mask': probability must be a number"):
        dropout_mask(x, "0.5")
    with pytest.raises(GateError, match="gate 'dropout_mask': generator must be a numpy"):
        dropout_mask(x, 0.5, np.random.RandomState(0))
    with pytest.raises(GateError, match="gate 'dropout_mask': a seed must be non-negative"):
        dropout_mask(x, 0.5, -1)
    with pytest.raises(ValueError, match="dropout: give either seed or generator"):
        F.dropout(x, 0.5, seed=1, generator=np.random.default_rng())
