"""`chainrule explain`: output, diagrams, exit codes and one-line messages."""

import argparse
import importlib
import subprocess
import sys

import pytest

from chainrule import Value
from chainrule.commands import explain as command

draw_module = importlib.import_module("chainrule.draw")


def run(*argv):
    """Run the subcommand through its own registration, as chainrule.cli does."""
    parser = argparse.ArgumentParser(prog="chainrule")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["explain", *argv])
    return args.run(args)


def test_expression_prints_forward_table_gradients_and_check(capsys):
    assert run("(x + y) * z", "--at", "x=-2", "y=5", "z=-4") == 0
    out = capsys.readouterr().out
    assert out.startswith("f = (x + y) * z\nat x=-2, y=5, z=-4\n")
    assert "t1 = x + y = 3" in out and "f = t1 * z = -12" in out
    assert "dt1 = -4  dz = 3" in out and "add distributes" in out
    gradients = out.split("\ngradients\n")[1].split("\n\n")[0].split("\n")
    assert gradients == ["  dx = -4", "  dy = -4", "  dz = 3"]
    check = next(line for line in out.splitlines() if line.startswith("gradient check"))
    assert check.endswith("ok")
    assert float(check.split("relative error ")[1].split()[0]) < 1e-6


@pytest.mark.parametrize("name", ["neuron", "staged", "patterns", "chain"])
def test_examples_run(name, capsys):
    assert run("--example", name) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: ")
    assert "gradient check" in out and out.rstrip().endswith("ok")


def test_neuron_example_shows_the_notes_numbers(capsys):
    run("--example", "neuron")
    out = capsys.readouterr().out
    for text in (
        "dt6 = -0.534",
        "dt5 = -0.534",
        "dt4 = -0.197",
        "ddot = 0.197",
        "dw2 = 0.197",
        "dw0 = -0.197  dx0 = 0.393",
    ):
        assert text in out
    assert "f = 1/t6 = 0.731" in out


def test_example_inputs_can_be_overridden(capsys):
    assert run("--example", "chain", "--at", "z=2") == 0
    out = capsys.readouterr().out
    assert "at x=-2, y=5, z=2" in out and "f = q * z = 6" in out


def test_staged_example_shows_forks(capsys):
    run("--example", "staged")
    out = capsys.readouterr().out
    assert "dx += 0.512" in out and "fork adds" in out
    assert "dx = 2.06" in out and "dy = 1.59" in out


def test_writes_svg_png_and_dot(tmp_path, capsys):
    files = {k: tmp_path / f"chain.{k}" for k in ("svg", "png", "dot")}
    argv = ["x * y", "--at", "x=3", "y=-4"]
    for fmt, path in files.items():
        argv += [f"--{fmt}", str(path)]
    if draw_module.dot_program() is None:
        pytest.skip("Graphviz not installed")
    assert run(*argv) == 0
    assert files["dot"].read_text().startswith("digraph circuit")
    assert "<svg" in files["svg"].read_text()
    assert files["png"].read_bytes().startswith(b"\x89PNG")
    assert "diagram: wrote" in capsys.readouterr().out


def test_collapse_option_draws_sigma(tmp_path):
    path = tmp_path / "n.dot"
    assert run("--example", "neuron", "--collapse", "sigmoid", "--dot", str(path)) == 0
    assert 'label="σ"' in path.read_text()


def test_without_graphviz_the_dot_text_is_written_instead(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(command, "dot_program", lambda: None)
    assert run("--example", "chain", "--svg", str(tmp_path / "c.svg")) == 0
    err = capsys.readouterr().err
    assert "not installed" in err and "c.dot" in err
    assert (tmp_path / "c.dot").read_text().startswith("digraph circuit")
    assert not (tmp_path / "c.svg").exists()


def test_an_unwritable_diagram_path_is_exit_1(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run("--example", "chain", "--dot", str(blocker / "x.dot")) == 1
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["x + foo(y)", "--at", "x=1", "y=2"], "column 5: unknown function 'foo'"),
        (["x + y", "--at", "x=1"], "column 5: no value given for 'y'"),
        (["x + * y", "--at", "x=1", "y=1"], "column 5: syntax error"),
        (["x.real", "--at", "x=1"], "column 1: attribute access is not allowed"),
        (["__import__('os')"], "column 1: unknown function '__import__'"),
        (["x + y", "--at", "x=1", "y=2", "w=3"], "'w' does not appear in the expression"),
        (["x", "--at", "x=abc"], "'abc' is not a number"),
        (["x", "--at", "x"], "write each value as NAME=VALUE"),
        (["x", "--at", "x=1", "x=2"], "'x' is given twice"),
        (["x", "--at", "x=inf"], "is not a number"),
        (["x", "--at", "x=[1, [2]]"], "rectangular"),
        (["x", "--at", "x=[1, y]"], "only numbers"),
        (["x * 2", "--at", "x=[1, 2]"], "gives an array of shape (2,)"),
        (["W @ x", "--at", "W=[[1, 2]]", "x=[1, 2, 3]"], "column 3: operator @"),
        (["sum(x, axis=3)", "--at", "x=[1, 2]"], "column 1: sum()"),
        (["log(x)", "--at", "x=-1"], "column 1: log(): gate 'log': input must be positive"),
        (["x / (x - 1)", "--at", "x=1"], "column 3: operator /: gate 'div': division by zero"),
        ([], "give an expression to explain"),
        (["x", "--example", "chain"], "not both"),
        (["--example", "chain", "--at", "q=1"], "has no input 'q'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_code_2(argv, message, capsys):
    assert run(*argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("chainrule explain: ")
    assert message in err


def test_argparse_errors_are_exit_code_2(capsys):
    with pytest.raises(SystemExit) as info:
        run("--example", "nope")
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_notes_vectorized_example_from_the_command_line(capsys):
    argv = ["sum((W @ x)**2)", "--at", "W=[[0.1,0.5],[-0.3,0.8]]", "x=[0.2,0.4]"]
    assert run(*argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("f = sum((W @ x)**2)\nat W=[[0.1,0.5],[-0.3,0.8]], x=[0.2,0.4]\n")
    assert "  f = Σ(t2) = 0.116\n" in out
    assert "gradients\n  dW = [[0.088 0.176] [0.104 0.208]]\n  dx = [-0.112 0.636]\n" in out
    assert "max relative error" in out and "ok" in out.splitlines()[-1]


def test_scalars_with_an_array_expression_become_zero_d_arrays(capsys):
    assert run("sum(x * [1, 2, 3])", "--at", "x=2") == 0
    assert "dx = 6\n" in capsys.readouterr().out


def test_digits_option_sets_significant_digits(capsys):
    assert run("x / 3", "--at", "x=1", "--digits", "5") == 0
    assert "= 0.33333" in capsys.readouterr().out


def test_a_slow_graphviz_is_a_clean_one_line_error(tmp_path, capsys, monkeypatch):
    def slow(self, fmt, timeout=30):
        raise draw_module.GraphvizTimeout("Graphviz's dot did not finish within 30 s")

    monkeypatch.setattr(command, "dot_program", lambda: "/usr/bin/dot")
    monkeypatch.setattr(draw_module.Diagram, "render", slow)
    assert run("x * y", "--at", "x=1", "y=2", "--svg", str(tmp_path / "a.svg")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not finish within 30 s" in err


def test_x_used_a_hundred_times_draws_quickly_and_says_collapsed(tmp_path, capsys):
    if draw_module.dot_program() is None:
        pytest.skip("Graphviz not installed")
    text = " + ".join(["x"] * 100)
    assert run(text, "--at", "x=1", "--svg", str(tmp_path / "x.svg")) == 0
    out = capsys.readouterr().out
    assert "diagram: drawn collapsed" in out and (tmp_path / "x.svg").exists()


def test_a_kink_is_reported_by_the_gradient_check(capsys):
    assert run("relu(x)", "--at", "x=0") == 0
    assert "CHECK FAILED" in capsys.readouterr().out


def test_a_constant_expression_has_nothing_to_check(capsys):
    assert run("2 * 3") == 0
    out = capsys.readouterr().out
    assert "nothing in this circuit needs a gradient" in out and "no inputs" in out


def test_the_console_entry_point_runs_explain():
    from chainrule import cli

    try:
        cli.build_parser()
    except ImportError:
        pytest.skip("another chainrule subcommand is not installed in this checkout")
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "explain", "x * y", "--at", "x=3", "y=-4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "dx = -4" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "explain", "x +", "--at", "x=3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "syntax error" in result.stderr


def test_a_failing_backward_pass_is_one_line_and_exit_2(capsys, monkeypatch):
    def broken(output, digits):
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")

    monkeypatch.setattr(command, "explain", broken)
    assert run("x * y", "--at", "x=0", "y=1") == 2
    err = capsys.readouterr().err
    assert err == (
        "chainrule explain: the backward pass failed at x=0, y=1: 0.0 cannot be "
        "raised to a negative power\n"
    )


def test_gradient_check_skips_gradients_that_are_not_finite_reals():
    build = command.EXAMPLES["chain"]
    point = {"x": -2.0, "y": 5.0, "z": -4.0}
    text = command._gradient_check(build, point, {"x": float("nan")})
    assert text == "gradient check: skipped (the gradient on x is nan)"
    text = command._gradient_check(build, point, {"x": 1j})
    assert text.startswith("gradient check: skipped (the gradient on x is 1j")


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        ("x=1e200", "the step h=1e-06 is below the float resolution at x=1e+200"),
        ("x=1e20", "the step h=1e-06 is below the float resolution at x=1e+20"),
    ],
)
def test_gradient_check_says_when_it_cannot_be_made(capsys, point, reason):
    assert run("x*x", "--at", point) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last == f"gradient check: could not be made ({reason})"


def test_gradient_check_says_when_the_function_overflows_near_the_point():
    text = command._gradient_check(lambda x: Value(x) * 1e308, {"x": 10.0}, {"x": 1e308})
    assert text == (
        "gradient check: could not be made (f is inf and inf at x=10 ± 1e-06, so the numeric "
        "derivative is not finite)"
    )
