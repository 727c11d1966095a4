"""``chainrule explain``: the forward pass, the backward pass step by step, the gradients, a
gradient check and the circuit diagram, for an expression or one of the notes' circuits.

    chainrule explain "(x + y) * z" --at x=-2 y=5 z=-4 --svg chain.svg
    chainrule explain "sum((W @ x)**2)" --at "W=[[0.1,0.5],[-0.3,0.8]]" "x=[0.2,0.4]"
    chainrule explain --example neuron --svg neuron.svg

Values are numbers or nested lists of numbers; when any value is a list, or the expression uses
``@``, a list or a reduction (``sum``, ``mean``, ``max``/``min`` of one argument, each with an
optional ``axis=``), every input is an array (a Tensor) and the expression must give one number.

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

import numpy as np

from ..check import relative_error
from ..draw import GraphvizMissing, dot_program, draw
from ..engine import Node
from ..explain import DIGITS, explain, format_value
from ..expr import ExpressionError, functions, parse, parse_value
from ..i18n import _, using
from ..notes import EXAMPLES
from ..tensor import tensor
from ..value import Value
from . import add_lang_option

STEP = 1e-6
"""The step of the centered differences in the gradient check."""


class UsageError(ValueError):
    """Bad command-line input; reported on one line with exit code 2."""


def register(subparsers: Any) -> None:
    """Add the ``explain`` subcommand."""
    parser = subparsers.add_parser(
        "explain",
        help="show the forward and backward pass of an expression step by step",
        description="Build the circuit of an expression (numbers, names, nested lists, "
        "+ - * / ** @, parentheses, and the functions " + " ".join(functions()) + "; sum, mean, "
        "max and min of one argument reduce, with an optional axis=), then print its forward "
        "values, each backward step (local gradient x upstream gradient), the gradients and a "
        "gradient check, and optionally write its diagram.",
    )
    parser.add_argument("expression", nargs="?", help='e.g. "(x + y) * z" or "sum((W @ x)**2)"')
    parser.add_argument(
        "--at",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="the inputs' values, numbers or nested lists, e.g. --at x=-2 y=5 z=-4 or "
        '--at "W=[[0.1,0.5],[-0.3,0.8]]" "x=[0.2,0.4]" (default: none)',
    )
    parser.add_argument(
        "--example",
        choices=sorted(EXAMPLES),
        help="one of the notes' circuits instead of an expression (default: none)",
    )
    parser.add_argument("--svg", metavar="FILE", help="write the diagram as SVG")
    parser.add_argument("--png", metavar="FILE", help="write the diagram as PNG")
    parser.add_argument("--dot", metavar="FILE", help="write the diagram as Graphviz DOT text")
    parser.add_argument(
        "--collapse",
        choices=["sigmoid"],
        help="draw sub-circuits as one gate (the primitive sigmoid as σ; default: every gate, "
        "or groups when the circuit is too large)",
    )
    parser.add_argument(
        "--digits",
        type=int,
        default=DIGITS,
        choices=range(1, 16),
        metavar="N",
        help=f"significant digits shown, 1 to 15 (default: {DIGITS})",
    )
    add_lang_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Explain the expression or example; returns the exit code, in the language of ``--lang``."""
    with using(args.lang):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
            "chainrule explain: "
            + _("the backward pass failed at {point}: {error}").format(
                point=_point_text(point), error=exc
            ),
            file=sys.stderr,
        )
        return 2
    print(title)
    print("\n" + _("forward"))
    print(_indent(explanation.forward_lines()))
    print("\n" + _("backward, from the output back (each gradient = local gradient x upstream)"))
    print(_indent(str(explanation).splitlines()))
    print("\n" + _("gradients"))
    print(_indent(explanation.gradient_lines() or [_("(no inputs)")]))
    print("\n" + _gradient_check(build, point, explanation.gradients))
    return _write_diagrams(args, output)


def _circuit(args: argparse.Namespace) -> tuple[str, Callable[..., Node], dict[str, Any]]:
    """The title, a function building the circuit from keyword numbers, and the point."""
    values = _assignments(args.at)
    if args.example is not None:
        if args.expression is not None:
            raise UsageError(_("give an expression or --example, not both"))
        example = EXAMPLES[args.example]
        point = {
            name: float(p.default) for name, p in inspect.signature(example).parameters.items()
        }
        for name in values:
            if name not in point:
                raise UsageError(
                    _(
                        "--at {name}: the {example} example has no input '{name}' (its inputs: "
                        "{inputs})"
                    ).format(name=name, example=args.example, inputs=", ".join(point))
                )
        point.update(values)
        summary = (example.__doc__ or "").strip().splitlines()[0]
        at = _("at {point}").format(point=_point_text(point))
        return f"{args.example}: {summary}\n{at}", example, point
    if args.expression is None:
        raise UsageError(_('give an expression to explain, e.g. "(x + y) * z", or --example NAME'))
    expression = parse(args.expression)
    for name in values:
        if name not in expression.names:
            raise UsageError(
                _("--at {name}: '{name}' does not appear in the expression").format(name=name)
            )
    arrays = expression.needs_arrays or any(np.ndim(v) for v in values.values())

    def build(**point: Any) -> Node:
        if arrays:
            inputs = {n: tensor(v, requires_grad=True, name=n) for n, v in point.items()}
        else:
            inputs = {n: Value(v, name=n) for n, v in point.items()}
        out = expression.build(inputs)
        if np.size(out.data) != 1:
            raise UsageError(
                _(
                    "the expression gives an array of shape {shape}, not one number; explain a "
                    "number made from it, e.g. sum({text})"
                ).format(shape=np.shape(out.data), text=expression.text)
            )
        if out.name is None:
            out.name = "f"
        return out

    at = _("at {point}").format(point=_point_text(values))
    title = f"f = {expression.text}" + (f"\n{at}" if values else "")
    return title, build, values


def _assignments(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as a dict; a value is a number or a nested list (an array)."""
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(
                _("--at {item}: write each value as NAME=VALUE, e.g. x=-2 or x=[0.2,0.4]").format(
                    item=item
                )
            )
        if name in values:
            raise UsageError(_("--at {item}: '{name}' is given twice").format(item=item, name=name))
        try:
            values[name] = parse_value(text)
        except ExpressionError as exc:
            raise UsageError(f"--at {item}: {exc.message}") from None
    return values


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{n}={_value_text(v)}" for n, v in point.items())


def _value_text(value: Any) -> str:
    if np.ndim(value) == 0:
        return f"{float(value):g}"
    return (
        np.array2string(
            np.asarray(value), separator=",", formatter={"float_kind": lambda v: f"{v:g}"}
        )
        .replace("\n", "")
        .replace(" ", "")
    )


def _indent(lines: list[str]) -> str:
    return "\n".join("  " + line for line in lines)


def _gradient_check(build: Callable[..., Node], point: dict[str, Any], analytic: dict) -> str:
    """Centered differences on every input (every element of an array), compared by the notes'
    relative error."""
    errors = []
    for name, value in point.items():
        if name not in analytic:
            continue
        exact = np.asarray(analytic[name])
        if np.iscomplexobj(exact) or not np.all(np.isfinite(exact)):
            return _("gradient check: skipped (the gradient on {name} is {value})").format(
                name=name, value=analytic[name]
            )
        numeric = np.zeros(np.shape(value))
        for index in np.ndindex(numeric.shape):
            at = f"{name}={_value_text(value)}"
            element = float(np.asarray(value)[index])
            if element + STEP == element or element - STEP == element:
                return _(
                    "gradient check: could not be made (the step h={step} is below the float "
                    "resolution at {at})"
                ).format(step=f"{STEP:g}", at=at)
            try:
                plus = float(build(**{**point, name: _nudged(value, index, STEP)}).data)
                minus = float(build(**{**point, name: _nudged(value, index, -STEP)}).data)
            except (ExpressionError, ValueError, ArithmeticError):
                return _(
                    "gradient check: skipped (the function is not defined around {at})"
                ).format(at=at)
            if not (math.isfinite(plus) and math.isfinite(minus)):
                return _(
                    "gradient check: could not be made (f is {plus} and {minus} at {at} ± "
                    "{step}, so the numeric derivative is not finite)"
                ).format(plus=f"{plus:g}", minus=f"{minus:g}", at=at, step=f"{STEP:g}")
            numeric[index] = (plus - minus) / (2 * STEP)
        errors.append(float(np.max(relative_error(exact, numeric))))
    if not errors:
        return _("gradient check: no inputs to check")
    worst = max(errors)
    verdict = (
        _("ok")
        if worst < 1e-6
        else _("CHECK FAILED (or the function has a kink here, as max/relu/abs do at a tie or 0)")
    )
    return _(
        "gradient check (centered differences, h={step}): max relative error {error}  {verdict}"
    ).format(step=f"{STEP:g}", error=format_value(worst, 1), verdict=verdict)


def _nudged(value: Any, index: tuple, step: float) -> Any:
    if np.ndim(value) == 0:
        return value + step
    moved = np.array(value, dtype=np.float64)
    moved[index] += step
    return moved


def _write_diagrams(args: argparse.Namespace, output: Node) -> int:
    targets = [(args.dot, "dot"), (args.svg, "svg"), (args.png, "png")]
    if not any(path for path, _ in targets):
        return 0
    diagram = draw(output, collapse=args.collapse, digits=args.digits)
    print()
    if diagram.note:
        print(_("diagram: {note}").format(note=diagram.note))
    for path, fmt in targets:
        if not path:
            continue
        path = Path(path)
        if fmt != "dot" and dot_program() is None:
            fallback = path.with_suffix(".dot")
            fallback.write_text(diagram.dot, encoding="utf-8")
            print(
                _(
                    "note: Graphviz's 'dot' program is not installed, so {path} was not written; "
                    "wrote the DOT text to {fallback} (apt-get install graphviz to render it)"
                ).format(path=path, fallback=fallback),
                file=sys.stderr,
            )
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            diagram.save(path, fmt)
        except (OSError, GraphvizMissing, RuntimeError) as exc:
            print(
                "chainrule explain: "
                + _("cannot write {path}: {error}").format(path=path, error=exc),
                file=sys.stderr,
            )
            return 1
        print(_("diagram: wrote {path}").format(path=path))
    return 0
