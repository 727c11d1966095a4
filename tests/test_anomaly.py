"""Anomaly mode: the first gate whose forward or backward produces NaN or inf raises an error
naming the gate, the user's line that made it and a summary of its inputs; off, nothing changes."""

import subprocess
import sys
import threading

import numpy as np
import pytest

import chainrule as cr


def test_a_forward_producing_inf_names_the_gate_the_line_and_the_inputs():
    x = cr.tensor([1.0, 0.0, 2.0], requires_grad=True, name="x")
    with cr.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(cr.AnomalyError) as info:
            y = x * 2
            y = y.log()  # the line the report points at
    message = str(info.value)
    assert "gate 'log' produced NaN or inf in its forward" in message
    assert (
        "test_anomaly.py" in message and "y = y.log()  # the line the report points at" in message
    )
    assert "input 0: shape (3,), dtype float64, finite min 0, max 4, 0 non-finite of 3" in message
    assert "1 non-finite of 3" in message
    assert isinstance(info.value, cr.GateError)


def test_the_first_gate_of_a_backward_producing_nan_is_named():
    x = cr.tensor([0.0, 4.0], requires_grad=True, name="x")
    with cr.detect_anomaly(), np.errstate(divide="ignore"):
        r = x.sqrt()
        loss = (r * 3).sum()
        with pytest.raises(cr.AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert "gate 'sqrt' produced NaN or inf in its gradient" in message
    assert "r = x.sqrt()" in message
    assert "upstream gradient: shape (2,), dtype float64, finite min 3, max 3" in message
    assert "gradient for input 0: shape (2,)" in message and "1 non-finite of 2" in message
    assert x.grad is None


def test_scalar_values_are_checked_too():
    a = cr.Value(1e308, name="a")
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match="gate 'scale'.*forward"):
        a * 10.0 * a


def test_outside_anomaly_mode_nothing_is_checked_or_captured():
    x = cr.tensor([0.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        y = x.log()
    assert np.isinf(y.data[0]) and "_site" not in y.__dict__
    assert not cr.is_anomaly_enabled()


def test_anomaly_mode_is_per_thread_and_restored():
    seen = []
    with cr.detect_anomaly():
        assert cr.is_anomaly_enabled()
        t = threading.Thread(target=lambda: seen.append(cr.is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [False] and not cr.is_anomaly_enabled()
    cr.set_detect_anomaly(True)
    try:
        assert cr.is_anomaly_enabled()
    finally:
        cr.set_detect_anomaly(False)
    assert cr.engine._Anomaly.threads == 0


def test_the_train_command_stops_at_the_first_anomaly(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "--data",
            "spiral",
            "--epochs",
            "2",
            "--lr",
            "1e300",
            "--detect-anomaly",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "chainrule train: anomaly: gate 'linear' produced NaN or inf" in result.stderr
