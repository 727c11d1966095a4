"""``chainrule explain``: the forward pass, the backward pass step by step, the gradients, a
gradient check and the circuit diagram, for an expression or one of the notes' circuits.

    chainrule explain "(x + y) * z" --at x=-2 y=5 z=-4 --svg chain.svg
    chainrule explain --example neuron --svg neuron.svg

Bad input (syntax, an unknown name or function, a missing or malformed value) gives a one-line
message with the column on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..check import relative_error
from ..draw import GraphvizMissing, dot_program, draw
from ..explain import DIGITS, explain, format_value
from ..expr import ExpressionError, parse
from ..notes import EXAMPLES
from ..value import Value

STEP = 1e-6
"""The step of the centered differences in the gradient check."""


class UsageError(ValueError):
    """Bad command-line input; reported on one line with exit code 2."""


def register(subparsers: Any) -> None:
    """Add the ``explain`` subcommand."""
    parser = subparsers.add_parser(
        "explain",
        help="show the forward and backward pass of an expression step by step",
        description="Build the circuit of an arithmetic expression (numbers, names, + - * / **, "
        "parentheses, and exp log tanh sigmoid relu max min abs sqrt), then print its forward "
        "values, each backward step (local gradient x upstream gradient), the gradients and a "
        "gradient check, and optionally write its diagram.",
    )
    parser.add_argument("expression", nargs="?", help='e.g. "(x + y) * z"')
    parser.add_argument(
        "--at",
        nargs="+",
        default=[],
        metavar="NAME=NUMBER",
        help="the inputs' values, e.g. --at x=-2 y=5 z=-4",
    )
    parser.add_argument(
        "--example",
        choices=sorted(EXAMPLES),
        help="one of the notes' circuits instead of an expression",
    )
    parser.add_argument("--svg", metavar="FILE", help="write the diagram as SVG")
    parser.add_argument("--png", metavar="FILE", help="write the diagram as PNG")
    parser.add_argument("--dot", metavar="FILE", help="write the diagram as Graphviz DOT text")
    parser.add_argument(
        "--collapse",
        choices=["sigmoid"],
        help="draw sub-circuits as one gate (the primitive sigmoid as σ)",
    )
    parser.add_argument(
        "--digits",
        type=int,
        default=DIGITS,
        choices=range(1, 16),
        metavar="N",
        help=f"significant digits shown, 1 to 15 (default {DIGITS})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Explain the expression or example; returns the exit code."""
    try:
        title, build, point = _circuit(args)
        output = build(**point)
    except (UsageError, ExpressionError) as exc:
        print(f"chainrule explain: {exc}", file=sys.stderr)
        return 2
    try:
        explanation = explain(output, digits=args.digits)
    except (ArithmeticError, ValueError) as exc:
        print(
            f"chainrule explain: the backward pass failed at {_point_text(point)}: {exc}",
            file=sys.stderr,
        )
        return 2
    print(title)
    print("\nforward")
    print(_indent(explanation.forward_lines()))
    print("\nbackward, from the output back (each gradient = local gradient x upstream)")
    print(_indent(str(explanation).splitlines()))
    print("\ngradients")
    print(_indent(explanation.gradient_lines() or ["(no inputs)"]))
    print("\n" + _gradient_check(build, point, explanation.gradients))
    return _write_diagrams(args, output)


def _circuit(args: argparse.Namespace) -> tuple[str, Callable[..., Value], dict[str, float]]:
    """The title, a function building the circuit from keyword numbers, and the point."""
    values = _assignments(args.at)
    if args.example is not None:
        if args.expression is not None:
            raise UsageError("give an expression or --example, not both")
        example = EXAMPLES[args.example]
        point = {
            name: float(p.default) for name, p in inspect.signature(example).parameters.items()
        }
        for name in values:
            if name not in point:
                raise UsageError(
                    f"--at {name}: the {args.example} example has no input '{name}' "
                    f"(its inputs: {', '.join(point)})"
                )
        point.update(values)
        summary = (example.__doc__ or "").strip().splitlines()[0]
        return f"{args.example}: {summary}\nat {_point_text(point)}", example, point
    if args.expression is None:
        raise UsageError('give an expression to explain, e.g. "(x + y) * z", or --example NAME')
    expression = parse(args.expression)
    for name in values:
        if name not in expression.names:
            raise UsageError(f"--at {name}: '{name}' does not appear in the expression")

    def build(**numbers: float) -> Value:
        out = expression.build({n: Value(v, name=n) for n, v in numbers.items()})
        if out.name is None:
            out.name = "f"
        return out

    title = f"f = {expression.text}" + (f"\nat {_point_text(values)}" if values else "")
    return title, build, values


def _assignments(items: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--at {item}: write each value as NAME=NUMBER, e.g. x=-2")
        if name in values:
            raise UsageError(f"--at {item}: '{name}' is given twice")
        try:
            value = float(number)
        except ValueError:
            raise UsageError(f"--at {item}: '{number}' is not a number") from None
        if not math.isfinite(value):
            raise UsageError(f"--at {item}: the value must be finite")
        values[name] = value
    return values


def _point_text(point: dict[str, float]) -> str:
    return ", ".join(f"{n}={v:g}" for n, v in point.items())


def _indent(lines: list[str]) -> str:
    return "\n".join("  " + line for line in lines)


def _gradient_check(build: Callable[..., Value], point: dict[str, float], analytic: dict) -> str:
    """Centered differences on every input, compared by the notes' relative error."""
    errors = []
    for name, value in point.items():
        if name not in analytic:
            continue
        exact = analytic[name]
        if isinstance(exact, complex) or not math.isfinite(exact):
            return f"gradient check: skipped (the gradient on {name} is {exact})"
        try:
            plus = build(**{**point, name: value + STEP}).data
            minus = build(**{**point, name: value - STEP}).data
        except (ExpressionError, ValueError, ArithmeticError):
            return f"gradient check: skipped (the function is not defined around {name}={value:g})"
        numeric = (plus - minus) / (2 * STEP)
        errors.append(float(relative_error(analytic[name], numeric)))
    if not errors:
        return "gradient check: no inputs to check"
    worst = max(errors)
    verdict = (
        "ok"
        if worst < 1e-6
        else ("CHECK FAILED (or the function has a kink here, as max/relu/abs do at a tie or 0)")
    )
    return (
        f"gradient check (centered differences, h={STEP:g}): max relative error "
        f"{format_value(worst, 1)}  {verdict}"
    )


def _write_diagrams(args: argparse.Namespace, output: Value) -> int:
    targets = [(args.dot, "dot"), (args.svg, "svg"), (args.png, "png")]
    if not any(path for path, _ in targets):
        return 0
    diagram = draw(output, collapse=args.collapse, digits=args.digits)
    print()
    if diagram.note:
        print(f"diagram: {diagram.note}")
    for path, fmt in targets:
        if not path:
            continue
        path = Path(path)
        if fmt != "dot" and dot_program() is None:
            fallback = path.with_suffix(".dot")
            fallback.write_text(diagram.dot, encoding="utf-8")
            print(
                f"note: Graphviz's 'dot' program is not installed, so {path} was not written; "
                f"wrote the DOT text to {fallback} (apt-get install graphviz to render it)",
                file=sys.stderr,
            )
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            diagram.save(path, fmt)
        except (OSError, GraphvizMissing, RuntimeError) as exc:
            print(f"chainrule explain: cannot write {path}: {exc}", file=sys.stderr)
            return 1
        print(f"diagram: wrote {path}")
    return 0
