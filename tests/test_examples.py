"""The scripts in examples/ run to completion and report what they promise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(
            "distributed_training.py",
            "training accuracy",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("mpi4py") is None,
                reason="needs mpi4py: pip install 'chainrule[mpi]'",
            ),
        ),
        ("explore_network.py", "modules: 0: Linear, 1: ReLU, 2: Linear"),
        ("staged_training.py", "training accuracy"),
        ("train_spiral.py", "same predictions = True"),
        ("circuit_pictures.py", "wrote 15 pictures"),
    ],
)
def test_example_runs(script, expected, tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
