"""``chainrule train`` end to end on small runs: exit codes, report, PNG plot and checkpoint."""

import argparse

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
    assert "cannot create output folder" in capsys.readouterr().err
