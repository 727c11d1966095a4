"""cr.train.Trainer: the course's Solver semantics (lr decay, best validation parameters,
histories), checkpoints that resume exactly, divergence and Ctrl-C that lose nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.train import Callback, DivergenceError, Trainer


def _mlp(seed=0, hidden=16):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(2, hidden, generator=rng), nn.ReLU(), nn.Linear(hidden, 3, generator=rng)
    )


def _trainer(tmp_path=None, epochs=6, seed=0, **options):
    x, y = cr.data.spiral(40, 3, seed=seed)
    options = {"optim_config": {"lr": 0.5, "momentum": 0.9}, "batch_size": 30, **options}
    return Trainer(
        _mlp(seed),
        (x, y),
        epochs=epochs,
        generator=seed,
        checkpoint=None if tmp_path is None else tmp_path / "ckpt.npz",
        **options,
    )


def test_fit_records_histories_and_decays_the_learning_rate():
    trainer = _trainer(epochs=4, lr_decay=0.5, val_split=0.25, reg=1e-3).fit()
    h = trainer.history
    assert len(h["loss"]) == len(h["train_acc"]) == len(h["val_acc"]) == 4
    assert h["lr"] == [0.5, 0.25, 0.125, 0.0625]
    assert len(h["batch_loss"]) == trainer.step == 4 * 3  # 90 training rows in batches of 30
    assert len(trainer.y_train) == 90 and len(trainer.y_val) == 30
    assert h["loss"][-1] < h["loss"][0]


def test_the_model_ends_with_the_best_validation_epochs_parameters():
    seen = {}

    class Keep(Callback):
        def on_epoch_end(self, trainer):
            seen[trainer.epoch] = trainer.model.state_dict()

    trainer = _trainer(epochs=8, val_split=0.3, callbacks=[Keep()]).fit()
    best = int(np.argmax(trainer.history["val_acc"])) + 1  # first maximum, as the Solver
    assert trainer.best_epoch == best
    assert trainer.best_val_acc == max(trainer.history["val_acc"])
    for key, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, seen[best][key])


def test_an_explicit_validation_set_is_used_as_given():
    x, y = cr.data.spiral(20, 3, seed=1)
    data = {"x_train": x, "y_train": y, "x_val": x[:7], "y_val": y[:7]}
    trainer = Trainer(_mlp(), data, epochs=1, batch_size=0, optim_config={"lr": 0.1})
    assert len(trainer.y_train) == 60 and len(trainer.y_val) == 7


def test_resume_continues_bit_for_bit(tmp_path):
    straight = _trainer(epochs=6, val_split=0.2).fit()
    first = _trainer(tmp_path, epochs=3, val_split=0.2).fit()
    assert first.epoch == 3
    second = _trainer(epochs=6, val_split=0.2).resume(tmp_path / "ckpt.npz")
    assert second.epoch == 3 and second.history["loss"] == first.history["loss"]
    second.fit()
    assert second.history == straight.history
    for key, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(second.model.state_dict()[key], value)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adam"])
def test_optimizer_state_is_part_of_the_checkpoint(tmp_path, optimizer):
    straight = _trainer(epochs=4, optimizer=optimizer, optim_config={"lr": 1e-2}).fit()
    _trainer(tmp_path, epochs=2, optimizer=optimizer, optim_config={"lr": 1e-2}).fit()
    resumed = _trainer(epochs=4, optimizer=optimizer, optim_config={"lr": 1e-2})
    resumed.resume(tmp_path / "ckpt.npz").fit()
    assert resumed.history["batch_loss"] == straight.history["batch_loss"]


def test_a_checkpoint_of_another_model_is_refused_and_changes_nothing(tmp_path):
    _trainer(tmp_path, epochs=1).fit()
    x, y = cr.data.spiral(40, 3)
    other = Trainer(_mlp(hidden=8), (x, y), epochs=2, optim_config={"lr": 0.1})
    before = other.model.state_dict()
    with pytest.raises(cr.io.CheckpointError, match="does not fit"):
        other.resume(tmp_path / "ckpt.npz")
    assert other.epoch == 0
    for key, value in before.items():
        np.testing.assert_array_equal(other.model.state_dict()[key], value)
    cr.save({"w": np.ones(2)}, tmp_path / "plain.npz")
    with pytest.raises(cr.io.CheckpointError, match="not a training checkpoint"):
        other.resume(tmp_path / "plain.npz")


def test_divergence_stops_before_the_bad_step_and_keeps_the_good_checkpoint(tmp_path):
    trainer = _trainer(tmp_path, epochs=2, optim_config={"lr": 0.05})
    trainer.fit()
    good = (tmp_path / "ckpt.npz").read_bytes()
    wild = _trainer(tmp_path, epochs=3, optim_config={"lr": 1e10})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warnings on the way
        with pytest.raises(DivergenceError, match="lower learning rate such as 1e\\+09") as exc:
            wild.fit()
    assert exc.value.epoch == 1 and exc.value.lr == 1e10
    assert all(np.isfinite(p.data).all() for p in wild.model.parameters())
    assert (tmp_path / "ckpt.npz").read_bytes() == good


def test_a_nan_loss_stops_at_once():
    trainer = _trainer(epochs=2, loss_fn=lambda s, y: cr.nn.functional.cross_entropy(s, y) * np.nan)
    with pytest.raises(DivergenceError, match="the loss became nan") as exc:
        trainer.fit()
    assert exc.value.step == 1 and trainer.step == 0


def test_ctrl_c_saves_the_last_finished_epoch(tmp_path):
    class Interrupt(Callback):
        def on_batch_end(self, trainer, loss):
            if trainer.epoch == 2 and trainer.step == 2 * 4 + 1:
                raise KeyboardInterrupt

    trainer = _trainer(tmp_path, epochs=5, checkpoint_every=10, callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    resumed = _trainer(epochs=5).resume(tmp_path / "ckpt.npz")
    assert resumed.epoch == 2 and len(resumed.history["loss"]) == 2
    assert resumed.step == 8


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": -1}, ValueError, "batch_size"),
        ({"val_split": 1.0}, ValueError, "val_split"),
        ({"optimizer": "lbfgs"}, ValueError, "unknown optimizer"),
        ({"optimizer": 3}, TypeError, "optimizer must be"),
        ({"lr_decay": 0}, ValueError, "lr_decay"),
        ({"reg": -1}, ValueError, "reg"),
    ],
)
def test_bad_options_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        _trainer(**options)
