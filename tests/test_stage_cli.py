"""``chainrule stage EXPR``: prints the staged code of an expression read by the safe parser; bad
input exits 2 with a one-line message."""

from __future__ import annotations

import re

import pytest

from chainrule.cli import main

STAGED = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["stage", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_notes_staged_example(capsys):
    code, out, err = run(capsys, STAGED, "--at", "x=3", "y=-4")
    assert code == 0 and err == ""
    assert "def f_staged(x, y):" in out and "return f, (dx, dy)" in out
    forward = out.split("# backward pass")[0]
    assert len(re.findall(r"# \(\d\)$", forward, re.M)) == 7  # the quotient is one stage
    assert len(re.findall(r"^\s+dx \+= ", out, re.M)) == 2
    assert len(re.findall(r"^\s+dy \+= ", out, re.M)) == 1
    assert "sigy = 1 / (1 + np.exp(-y))" in out and "xpysqr = xpy ** 2.0" in out
    compile(out, "<staged>", "exec")  # valid Python (compiled only)


def test_wrt_and_shape_write_array_stages_into_buffers(capsys):
    code, out, _ = run(capsys, "sigmoid(w * x + b)", "--shape", "4,3", "--wrt", "w", "b")
    assert code == 0
    assert "= np.empty((4, 3))" in out and "np.multiply(w, x, " in out
    assert "return f, (dw, db)" in out and "dx" not in out  # no gradient nobody asked for


def test_no_buffers_writes_plain_expressions(capsys):
    code, out, _ = run(capsys, "x * y", "--shape", "2", "--no-buffers")
    assert code == 0 and "np.empty" not in out and "t1 = x * y" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["x + (y"], "column 5"),
        (["x.real"], "attribute access is not allowed"),
        (["__import__('os')"], "column 1"),
        (["2 + 3"], "no variables"),
        (["x * y", "--at", "z=1"], "'z' does not appear"),
        (["x * y", "--at", "x=abc"], "not a number"),
        (["x * y", "--wrt", "q"], "--wrt q"),
        (["x * y", "--shape", "a,b"], "--shape a,b"),
        (["x * y", "--shape", "0"], "sizes must be positive"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("chainrule stage: ") and err.count("\n") == 1
    assert message in err


def test_the_notes_vectorized_example_stages_from_list_values(capsys):
    code, out, err = run(
        capsys, "sum((W @ x)**2)", "--at", "W=[[0.1,0.5],[-0.3,0.8]]", "x=[0.2,0.4]"
    )
    assert code == 0 and err == ""
    assert "at W: float64[2, 2], x: float64[2]" in out and "return f, (dW, dx)" in out
    compile(out, "<staged>", "exec")


def test_an_array_expression_is_summed_and_bad_lists_are_one_line(capsys):
    code, out, _ = run(capsys, "x * [1, 2]", "--at", "x=[3, 4]")
    assert code == 0 and "np.sum" in out
    code, _, err = run(capsys, "x", "--at", "x=[[1], [2, 3]]")
    assert code == 2 and "rectangular" in err and err.count("\n") == 1
