"""Training with ``cr.jit``: ``Trainer(jit=True)`` and ``chainrule train`` run their steps staged,
and the parameters (and batch-norm buffers) come out as eager training leaves them (float64,
1e-12 relative) for every model the CLI trains; the guards that keep a staged step honest when
the model changes under it (a replaced layer, a hook, anomaly mode)."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.cli import main
from chainrule.commands import train as train_cli
from chainrule.nn import functional as F
from chainrule.train import Callback, Trainer


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


# --- Trainer(jit=True): the models `chainrule train` trains --------------------------------------
def _model(kind, rng):
    """A small version of each model the CLI builds (through the CLI's own build_model)."""
    options = {"model": "mlp", "hidden": 10, "norm": "none", "dropout": 0.0}
    options.update({"filters": 4, "filter_size": 3})
    shape = (6,)
    if kind == "convnet":
        options["model"], shape = "convnet", (1, 8, 8)
    elif kind in ("batchnorm", "layernorm"):
        options["norm"] = kind
    elif kind == "dropout":
        options["dropout"] = 0.3
    return train_cli.build_model(argparse.Namespace(**options), shape, 3, rng), shape


def _fit(kind, jit, epochs=3, optimizer="sgd", callbacks=lambda model: [], **options):
    rng = np.random.default_rng(0)
    model, shape = _model(kind, rng)
    x = rng.standard_normal((37, *shape))  # batches of 8: four, and a final one of 5
    y = rng.integers(0, 3, 37)
    config = {"lr": 0.1, "momentum": 0.9} if optimizer == "sgd" else {"lr": 1e-2}
    trainer = Trainer(
        model,
        (x, y),
        optimizer=optimizer,
        optim_config=config,
        reg=1e-2,
        batch_size=8,
        epochs=epochs,
        generator=rng,
        jit=jit,
        callbacks=callbacks(model),
        **options,
    )
    return trainer.fit()


def _assert_same(a, b):
    """Parameters and buffers (batch norm's running statistics) to 1e-12 relative."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype
        np.testing.assert_allclose(sb[key], sa[key], rtol=1e-12, atol=0, err_msg=key)
    assert a.history["batch_loss"] == pytest.approx(b.history["batch_loss"], rel=1e-12)


@pytest.mark.parametrize("kind", ["mlp", "batchnorm", "layernorm", "dropout", "convnet"])
def test_jitted_training_leaves_the_parameters_of_eager_training(kind):
    eager = _fit(kind, jit=False)
    staged = _fit(kind, jit=True)
    assert eager.jitted is None
    # 15 steps: each batch shape (8 and the final 5) traced twice, then staged
    assert (staged.jitted.traces, staged.jitted.staged_calls) == (4, 11)
    assert staged.jitted.eager_calls == 0
    _assert_same(eager, staged)
    if kind == "batchnorm":
        assert int(staged.model.state_dict()["1.num_batches_tracked"]) == 15


def test_jitted_training_with_adam_and_a_validation_split():
    _assert_same(
        _fit("mlp", False, optimizer="adam", val_split=0.2),
        _fit("mlp", True, optimizer="adam", val_split=0.2),
    )


def test_the_staged_step_shows_its_forward_and_backward():
    source = _fit("mlp", jit=True).jitted.source
    assert "def forward_backward_staged(" in source
    assert "# forward pass" in source and "# backward pass" in source


class _Halve(Callback):
    """Changes the gradients between backward and the optimizer step (as data parallelism's
    averaging does)."""

    def on_after_backward(self, trainer):
        for p in trainer.model.parameters():
            p.grad *= 0.5


def test_callbacks_see_and_change_the_staged_steps_gradients():
    eager = _fit("mlp", False, callbacks=lambda model: [_Halve()])
    staged = _fit("mlp", True, callbacks=lambda model: [_Halve()])
    assert staged.jitted.staged_calls == 11
    _assert_same(eager, staged)


def test_one_rank_data_parallel_training_stages_its_steps():
    pytest.importorskip("mpi4py")
    parallel = lambda model: [cr.distributed.DataParallelCallback()]  # noqa: E731
    eager, staged = (
        _fit("dropout", False, callbacks=parallel),
        _fit("dropout", True, callbacks=parallel),
    )
    assert staged.jitted.staged_calls == 11
    _assert_same(eager, staged)


def test_diagnostics_watch_eager_steps_with_every_hook():
    diags = []

    def watch(model):
        diags.append(cr.diagnostics.Diagnostics(model, every=2))
        return [diags[-1].callback()]

    eager, staged = _fit("mlp", False, callbacks=watch), _fit("mlp", True, callbacks=watch)
    diag_eager, diag_jit = diags
    assert staged.jitted.staged_calls == staged.jitted.traces == 0  # eager_steps: not called
    assert len(diag_jit.samples) == len(diag_eager.samples) == 8
    assert all(sample.layers for sample in diag_jit.samples)  # the forward hooks ran
    _assert_same(eager, staged)


def test_anomaly_mode_trains_eagerly():
    with cr.detect_anomaly():
        staged = _fit("mlp", jit=True)
    assert staged.jitted.eager_calls == 15 and staged.jitted.staged_calls == 0
    _assert_same(_fit("mlp", jit=False), staged)


def test_a_jitted_run_resumes_from_its_checkpoint_as_an_eager_run_goes_on(tmp_path):
    straight = _fit("batchnorm", jit=False, epochs=5)
    _fit("batchnorm", jit=True, epochs=2, checkpoint=tmp_path / "ckpt.npz")
    rng = np.random.default_rng(0)
    model, shape = _model("batchnorm", rng)
    x, y = rng.standard_normal((37, *shape)), rng.integers(0, 3, 37)
    resumed = Trainer(
        model,
        (x, y),
        optim_config={"lr": 0.1, "momentum": 0.9},
        reg=1e-2,
        batch_size=8,
        epochs=5,
        generator=rng,
        jit=True,
    ).resume(tmp_path / "ckpt.npz")
    resumed.fit()
    assert resumed.jitted.staged_calls == 11
    _assert_same(straight, resumed)


# --- chainrule train ------------------------------------------------------------------------------
_SPIRAL = ["--data", "spiral", "--hidden", "8", "--epochs", "4", "--batch-size", "64"]
_CONVNET = ["--data", "digits", "--model", "convnet", "--filters", "2", "--hidden", "8"]
_CONVNET += ["--epochs", "3", "--batch-size", "256"]


def _report(out: str) -> str:
    """The printed report with its table's cells joined (a long cell wraps onto more lines)."""
    return " ".join(out.replace("│", " ").split())


@pytest.mark.parametrize(
    "argv",
    [
        [*_SPIRAL, "--norm", "batchnorm", "--dropout", "0.2"],
        [*_SPIRAL, "--norm", "layernorm", "--optim", "adam"],
        _CONVNET,
    ],
    ids=["mlp-batchnorm-dropout", "mlp-layernorm-adam", "convnet"],
)
def test_train_stages_by_default_and_no_jit_gives_the_same_model(argv, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "jit")]) == 0
    staged = _report(capsys.readouterr().out)
    assert main(["train", *argv, "--out", str(tmp_path / "eager"), "--no-jit"]) == 0
    eager = _report(capsys.readouterr().out)
    assert re.search(r"jit \d+ of \d+ steps staged \(\d traced\)", staged)
    assert "off (--no-jit): every step ran eagerly" in eager
    a, b = cr.load(tmp_path / "eager" / "model.npz"), cr.load(tmp_path / "jit" / "model.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=0, err_msg=key)


def test_spiral_report_counts_the_staged_steps(tmp_path, capsys):
    # 300 points in batches of 64: four and a final 44 per epoch, each shape traced twice
    assert main(["train", *_SPIRAL, "--out", str(tmp_path)]) == 0
    assert "jit 16 of 20 steps staged (4 traced)" in _report(capsys.readouterr().out)


def test_show_staged_prints_the_code_once_a_step_ran_it(tmp_path, capsys):
    assert main(["train", *_SPIRAL, "--out", str(tmp_path), "--show-staged"]) == 0
    out = capsys.readouterr().out
    title = "the training step as cr.jit staged it (running since step 3):"
    assert out.count(title) == 1 and out.index(title) < out.index("final loss")
    code = out[out.index(title) :]
    assert "def forward_backward_staged(" in code and "# backward pass" in code
    assert "float64[64, 2]" in code  # the batch that ran staged first, not the final 44


def test_show_staged_of_a_run_too_short_to_stage_shows_the_traced_code(tmp_path, capsys):
    argv = ["--data", "spiral", "--hidden", "8", "--epochs", "2", "--show-staged"]
    assert main(["train", *argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(no step ran it: a batch shape runs staged from its third step):" in out
    assert "def forward_backward_staged(" in out
    assert "0 of 2 steps staged (2 traced)" in _report(out)


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--no-jit"], "--no-jit"),
        (["--diagnose"], "--diagnose"),
        (["--detect-anomaly", "--no-jit"], "--no-jit and --detect-anomaly"),
    ],
)
def test_show_staged_with_eager_steps_is_refused_in_one_line(flags, named, tmp_path, capsys):
    assert main(["train", *_SPIRAL, "--out", str(tmp_path), "--show-staged", *flags]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"chainrule train: --show-staged: every step runs eagerly with {named}, so nothing is "
        "staged to show\n"
    )
    assert not (tmp_path / "model.npz").exists()


def test_diagnose_still_watches_every_sampled_step(tmp_path, capsys):
    assert main(["train", *_SPIRAL, "--out", str(tmp_path), "--diagnose"]) == 0
    out = _report(capsys.readouterr().out)
    assert "off while --diagnose watches each step: every step ran eagerly" in out
    assert "diagnosis:" in out and (tmp_path / "report.html").exists()


def test_detect_anomaly_runs_each_step_eagerly(tmp_path, capsys):
    assert main(["train", *_SPIRAL, "--out", str(tmp_path), "--detect-anomaly"]) == 0
    assert "off while --detect-anomaly checks each gate" in _report(capsys.readouterr().out)


def test_resume_keeps_its_own_jit_choice(tmp_path, capsys):
    assert main(["train", *_SPIRAL, "--out", str(tmp_path), "--no-jit"]) == 0
    checkpoint = str(tmp_path / "checkpoint.npz")
    argv = ["train", "--resume", checkpoint, "--epochs", "7", "--out", str(tmp_path / "more")]
    capsys.readouterr()
    assert main(argv) == 0
    assert "11 of 15 steps staged (4 traced)" in _report(capsys.readouterr().out)


def test_a_hook_on_the_model_is_called_at_every_step_after_one_warning():
    calls = []

    def hooked(model):
        model[0].register_forward_hook(lambda module, args, out: calls.append(out.shape))
        return []

    with pytest.warns(cr.JitWarning, match="hooks") as caught:
        staged = _fit("mlp", True, callbacks=hooked)
    assert len(caught) == 2  # once per batch shape, then that shape runs eagerly
    steps = [shape for shape in calls if shape[0] in (8, 5)]  # not the evaluations (37 rows)
    assert len(steps) == 15 and staged.jitted.staged_calls == 0
    _assert_same(_fit("mlp", False, callbacks=hooked), staged)
