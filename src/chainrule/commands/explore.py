"""``chainrule explore``: write the circuit explorer of an expression as one HTML file.

    chainrule explore "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)" --at x=3 y=-4 \\
        --html staged.html

The file is self-contained (it opens from ``file://`` with nothing fetched): step the backward
pass gate by gate, click wires, take the quiz. Changing inputs needs ``chainrule serve`` or
``cr.explore`` in Jupyter. Bad input gives a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..draw import GraphvizMissing
from ..explain import DIGITS
from ..expr import ExpressionError, parse
from .explain import UsageError, _assignments


def register(subparsers: Any) -> None:
    """Add the ``explore`` subcommand."""
    parser = subparsers.add_parser(
        "explore",
        help="write a page that steps through an expression's backward pass (one HTML file)",
        description="Build the circuit of an arithmetic expression (the language of chainrule "
        "explain) and write the circuit explorer as one self-contained HTML file: the circuit "
        "with values and gradients on every wire, the backward pass step by step with the "
        "matching line of staged code, forks, a quiz. For live inputs use chainrule serve.",
    )
    parser.add_argument("expression", help='e.g. "(x + y) * z"')
    parser.add_argument(
        "--at",
        nargs="+",
        default=[],
        metavar="NAME=NUMBER",
        help="the inputs' values (1 where not given), e.g. --at x=-2 y=5 z=-4",
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        default="explore.html",
        help="the page to write (default: explore.html)",
    )
    parser.add_argument(
        "--digits",
        type=int,
        default=DIGITS,
        choices=range(1, 16),
        metavar="N",
        help=f"significant digits shown (default {DIGITS})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the page; returns the exit code."""
    from ..explore import Explorer
    from ..explore.subject import Subject

    try:
        expression = parse(args.expression)
        values = _assignments(args.at)
        for name in values:
            if name not in expression.names:
                raise UsageError(f"--at {name}: '{name}' does not appear in the expression")
        point = {n: values.get(n, 1.0) for n in expression.names}
        explorer = Explorer(Subject.from_expression(expression, point, digits=args.digits))
    except (UsageError, ExpressionError) as exc:
        print(f"chainrule explore: {exc}", file=sys.stderr)
        return 2
    except GraphvizMissing as exc:
        print(f"chainrule explore: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, ArithmeticError) as exc:
        print(f"chainrule explore: the circuit failed: {_first_line(exc)}", file=sys.stderr)
        return 2
    path = Path(args.html)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        explorer.save(path)
    except OSError as exc:
        print(f"chainrule explore: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(
        f"explorer: wrote {path} ({len(explorer.data['steps'])} backward steps); "
        "open it in a browser"
    )
    return 0


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
