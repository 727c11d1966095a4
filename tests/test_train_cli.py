"""``chainrule train`` end to end on small runs: exit codes, report, PNG plot and checkpoint."""

import argparse
import os
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.cli import main
from chainrule.commands import train


def run(argv):
    """Run ``chainrule train ...`` through the real command line entry point."""
    return main(["train", *argv])


def test_subcommand_registers_itself_on_any_parser():
    parser = argparse.ArgumentParser(prog="chainrule")
    train.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", "--data", "digits", "--optim", "adam"])
    assert args.run is train.run and args.data == "digits" and args.epochs is None


def test_spiral_training_writes_plot_and_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = run(
        ["--data", "spiral", "--hidden", "20", "--epochs", "30", "--seed", "1", "--out", str(out)]
    )
    assert code == 0
    report = capsys.readouterr().out
    assert "train accuracy" in report and "2-20-3 ReLU MLP" in report
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = nn.Sequential(nn.Linear(2, 20), nn.ReLU(), nn.Linear(20, 3))
    model.load_state_dict(cr.load(out / "model.npz"))
    x, y = cr.data.spiral(100, 3, seed=1)
    assert np.mean(model(x).data.argmax(axis=1) == y) > 0.4


def test_digits_training_with_adam_reports_test_accuracy(tmp_path, capsys):
    code = run(
        [
            "--data",
            "digits",
            "--hidden",
            "32",
            "--epochs",
            "2",
            "--optim",
            "adam",
            "--batch-size",
            "64",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    assert cr.load(tmp_path / "model.npz")["0.weight"].shape == (32, 64)


@pytest.mark.parametrize(
    "argv",
    [
        ["--data", "mnist"],
        ["--epochs", "0"],
        ["--epochs", "ten"],
        ["--hidden", "-3"],
        ["--lr", "-0.1"],
        ["--lr", "nan"],
        ["--optim", "lbfgs"],
        ["--batch-size", "-1"],
        ["--reg", "-1"],
    ],
)
def test_bad_arguments_exit_with_2(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run([*argv, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_output_folder_that_is_a_file_exits_with_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["--epochs", "1", "--out", str(blocker)]) == 2
    assert "cannot write to output folder" in capsys.readouterr().err


# --- never losing a run (issue 9 item 13) and one-line errors (item 14) ---------------------------
SMALL = ["--data", "spiral", "--hidden", "8", "--seed", "3"]


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_unwritable_output_folder_is_refused_before_training(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(cr.train.Trainer, "fit", lambda self: calls.append(1))
    assert run([*SMALL, "--out", "/proc/chainrule-cannot-write-here"]) == 2
    assert "cannot write to output folder" in _one_line(capsys.readouterr().err)
    (tmp_path / "file").write_text("x")
    assert run([*SMALL, "--out", str(tmp_path / "file" / "sub")]) == 2
    assert "cannot write to output folder" in _one_line(capsys.readouterr().err)
    assert calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path, capsys):
    tmp_path.chmod(0o555)
    try:
        assert run([*SMALL, "--out", str(tmp_path)]) == 2
    finally:
        tmp_path.chmod(0o755)
    assert "Permission denied" in _one_line(capsys.readouterr().err)


def test_ctrl_c_saves_the_last_finished_epoch_and_exits_130(tmp_path, capsys, monkeypatch):
    step = cr.train.Trainer.train_step

    def interrupt_in_epoch_4(self, x, y):
        if self.epoch == 3:
            raise KeyboardInterrupt
        return step(self, x, y)

    monkeypatch.setattr(cr.train.Trainer, "train_step", interrupt_in_epoch_4)
    assert run([*SMALL, "--epochs", "10", "--out", str(tmp_path)]) == 130
    line = _one_line(capsys.readouterr().err)
    assert "interrupted; epoch 3 is saved in" in line and "--resume" in line
    monkeypatch.setattr(cr.train.Trainer, "train_step", step)
    assert (
        run(["--resume", str(tmp_path / "checkpoint.npz"), "--epochs", "5", "--out", str(tmp_path)])
        == 0
    )
    assert "5 epochs" in capsys.readouterr().out


def test_resume_gives_the_uninterrupted_run(tmp_path, capsys):
    assert run([*SMALL, "--epochs", "6", "--out", str(tmp_path / "straight")]) == 0
    assert run([*SMALL, "--epochs", "3", "--out", str(tmp_path / "split")]) == 0
    checkpoint = tmp_path / "split" / "checkpoint.npz"
    # --resume takes the run's options from the checkpoint (--hidden 8, seed 3), not the defaults
    assert (
        run(["--resume", str(checkpoint), "--epochs", "6", "--out", str(tmp_path / "split")]) == 0
    )
    straight = cr.load(tmp_path / "straight" / "model.npz")
    resumed = cr.load(tmp_path / "split" / "model.npz")
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(straight[key], resumed[key])
    capsys.readouterr()
    assert run(["--resume", str(checkpoint), "--epochs", "6", "--out", str(tmp_path)]) == 2
    assert "already has 6 epochs" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no checkpoint file"), (b"not a zip", "not a readable"), ("plain", "not a training")],
)
def test_a_bad_resume_file_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "c.npz"
    if content == "plain":
        cr.save({"w": np.ones(2)}, path)
    elif content is not None:
        path.write_bytes(content)
    assert run(["--resume", str(path), "--out", str(tmp_path)]) == 2
    assert message in _one_line(capsys.readouterr().err)


def test_a_diverging_run_stops_at_once_and_keeps_the_good_checkpoint(tmp_path, capsys):
    assert run([*SMALL, "--epochs", "2", "--out", str(tmp_path)]) == 0
    good = (tmp_path / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run([*SMALL, "--epochs", "50", "--lr", "1e10", "--out", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "training diverged in epoch 2, step 2" in line  # the spiral: one step per epoch
    assert "try a lower learning rate such as 1e+09" in line
    assert "checkpoint.npz is unchanged" in line
    assert (tmp_path / "checkpoint.npz").read_bytes() == good


def test_a_model_too_large_for_memory_is_refused_with_the_estimate(tmp_path, capsys):
    assert run([*SMALL, "--hidden", "100000000000", "--out", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "would need about 989 TB of memory" in line and "smaller --hidden" in line


def test_a_negative_seed_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run(["--seed", "-1", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--seed: expected an integer >= 0, got -1" in _one_line(capsys.readouterr().err)
