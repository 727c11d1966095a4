"""`chainrule demo`, the tour `make demo` runs: every part runs and writes its files."""

from __future__ import annotations

from chainrule.cli import main


def test_demo_prints_the_notes_numbers_and_writes_its_files(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "5"]) == 0
    out = capsys.readouterr().out
    assert "dx=-4, dy=-4, dz=3" in out  # (x + y) z
    assert "f = 0.731059" in out and "dx0=0.393224" in out  # the sigmoid neuron
    assert "dx += (1 - sigx) * sigx * dsigx" in out  # staged code with += at the fork
    assert "train accuracy" in out
    for name in ("chain.svg", "neuron.svg", "neuron.png", "train/model.npz", "train/training.png"):
        assert (tmp_path / name).is_file(), name


def test_demo_returns_the_exit_code_of_a_failing_step(tmp_path, capsys):
    (tmp_path / "train").write_text("a file where the training folder should go")
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1"]) == 2
    assert "Files written" not in capsys.readouterr().out
