"""The command line never answers a user error with a traceback (issue 9 item 14): one line on
stderr and a non-zero exit code, for every subcommand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _chainrule(*argv, stdout=subprocess.PIPE, env=None):
    environment = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=environment,
        timeout=60,
        check=False,
    )


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epochs", "ten"])
    assert exc.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("chainrule train: error: argument --epochs") and "--help" in line


def test_an_expression_starting_with_minus_gets_a_hint(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stage", "-x"])
    assert exc.value.code == 2
    assert "goes last, after --: chainrule stage -- -x" in _one_line(capsys.readouterr().err)
    assert main(["stage", "--", "-x"]) == 0
    assert "def f_staged(x)" in capsys.readouterr().out


def test_demo_into_a_file_or_an_unwritable_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker), "--epochs", "1"]) == 2
    assert "it is a file, not a folder" in _one_line(capsys.readouterr().err)
    assert main(["demo", "--out", "/proc/chainrule-demo", "--epochs", "1"]) == 2
    assert "cannot write to output folder" in _one_line(capsys.readouterr().err)


def test_output_into_a_closed_pipe_is_one_line():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as with `| head -0`
    try:
        result = _chainrule("stage", "x * y", stdout=write)
    finally:
        os.close(write)
    assert result.returncode == 141
    assert "broken pipe" in _one_line(result.stderr.decode())


def test_a_terminal_that_is_not_utf8_gets_replacement_characters():
    result = _chainrule("explain", "sigmoid(x)", "--at", "x=2", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert "?" in result.stdout.decode("ascii")  # σ could not be shown


def test_ctrl_c_in_any_command_is_one_line(monkeypatch, capsys):
    from chainrule.commands import stage

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "run", interrupted)
    assert main(["stage", "x"]) == 130
    assert _one_line(capsys.readouterr().err) == "chainrule stage: interrupted"


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    from chainrule.commands import stage

    def exhausted(args):
        raise MemoryError

    monkeypatch.setattr(stage, "run", exhausted)
    assert main(["stage", "x"]) == 1
    assert "out of memory" in _one_line(capsys.readouterr().err)


def test_a_real_ctrl_c_during_training_keeps_the_last_finished_epoch(tmp_path):
    import signal
    import time

    import chainrule as cr

    out = tmp_path / "run"
    argv = ["train", "--hidden", "8", "--epochs", "1000000", "--checkpoint-every", "50"]
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", *argv, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    line = _one_line(err.decode())
    assert line.startswith("chainrule train: interrupted; epoch ") and "--resume" in line
    epoch = int(line.split("epoch ")[1].split()[0])
    state = cr.load(out / "checkpoint.npz")
    assert cr.train.read_info(state)["epoch"] == epoch >= 50


def test_a_stray_minus_argument_gets_the_hint_for_the_command_typed(capsys):
    for argv, command in ((["explain", "-x"], "explain"), (["stage", "x", "-y"], "stage")):
        with pytest.raises(SystemExit):
            main(argv)
        line = _one_line(capsys.readouterr().err)
        assert f"after --: chainrule {command} -- -x" in line, line
    with pytest.raises(SystemExit):
        main(["explain", "--no-such-option"])
    assert "after --" not in _one_line(capsys.readouterr().err)


def test_chainrule_warnings_are_one_line(capsys):
    """A cr.JitWarning (or any chainrule warning) during a command is one line on stderr; other
    warnings keep Python's format."""

    import chainrule as cr
    from chainrule.cli import one_line_warnings

    seen = []
    show = one_line_warnings("train", lambda *args: seen.append(args))
    message = cr.JitWarning("cr.jit: step runs eagerly for this signature: a reason (at f.py:3)")
    show(message, cr.JitWarning, "/somewhere/jitted.py", 150)
    show(DeprecationWarning("old"), DeprecationWarning, "x.py", 1)
    err = capsys.readouterr().err
    assert err == f"chainrule train: warning: {message}\n"
    assert len(seen) == 1 and seen[0][1] is DeprecationWarning
