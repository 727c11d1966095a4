"""``chainrule stage``: print the staged forward and backward code of an expression.

    chainrule stage "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)" --at x=3 y=-4
    chainrule stage "sigmoid(w * x + b)" --shape 64,10 --wrt w b
    chainrule stage "sum((W @ x)**2)" --at "W=[[0.1,0.5],[-0.3,0.8]]" "x=[0.2,0.4]"

The expression is read by the same safe parser as ``explain`` (nothing is evaluated); its inputs
are traced at ``--at`` (numbers or nested lists; 1 where not given), as scalars or, with
``--shape``, as arrays of that shape. An expression that gives an array is summed to one number.
Bad input gives a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from ..engine import GateError
from ..expr import ExpressionError, functions, parse
from ..i18n import _, using
from ..stage import stage
from ..tensor import Tensor, tensor
from . import add_lang_option
from .explain import UsageError, _assignments


def register(subparsers: Any) -> None:
    """Add the ``stage`` subcommand."""
    parser = subparsers.add_parser(
        "stage",
        help="print the staged forward and backward code of an expression",
        description="Trace an expression (numbers, names, nested lists, + - * / ** @, "
        "parentheses, and the functions " + " ".join(functions()) + "; sum, mean, max and min "
        "of one argument reduce, with an optional axis=) and print the straight-line NumPy code "
        "cr.stage generates for it: one line per forward stage, then the backward stages in "
        "reverse, each commented with the forward stage it differentiates.",
    )
    parser.add_argument("expression", help='e.g. "(x + y) * z"')
    parser.add_argument(
        "--at",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="the values to trace at, numbers or nested lists, e.g. --at x=3 y=-4 "
        'or --at "x=[0.2,0.4]" (default: 1)',
    )
    parser.add_argument(
        "--wrt",
        nargs="+",
        metavar="NAME",
        help="the inputs to differentiate with respect to (default: all)",
    )
    parser.add_argument(
        "--shape",
        metavar="D1,D2,...",
        help="trace every input not given by --at as an array of this shape (the expression "
        "is then summed); arrays are written into buffers (default: scalars)",
    )
    parser.add_argument(
        "--no-buffers",
        action="store_true",
        help="write array stages as plain expressions instead of out= calls",
    )
    add_lang_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the staged code; returns the exit code, in the language of ``--lang``."""
    with using(args.lang):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        print(_source(args), end="")
    except (UsageError, ExpressionError, GateError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"chainrule stage: {message}", file=sys.stderr)
        return 2
    return 0


def _source(args: argparse.Namespace) -> str:
    expression = parse(args.expression)
    names = expression.names
    if not names:
        raise UsageError(_("the expression has no variables to differentiate"))
    values = _assignments(args.at)
    for name in values:
        if name not in names:
            raise UsageError(
                _("--at {name}: '{name}' does not appear in the expression").format(name=name)
            )
    wrt = args.wrt or list(names)
    for name in wrt:
        if name not in names:
            raise UsageError(
                _("--wrt {name}: '{name}' does not appear in the expression").format(name=name)
            )
    shape = _shape(args.shape)

    def f(*inputs: Tensor) -> Tensor:  # no local variables: they would name stages
        return _summed(expression.build(dict(zip(names, inputs))))

    inputs = [tensor(values[n] if n in values else np.full(shape, 1.0), name=n) for n in names]
    with np.errstate(all="ignore"):
        staged = stage(
            f, *inputs, wrt=tuple(names.index(n) for n in wrt), buffers=not args.no_buffers
        )
    return staged.source


def _summed(value: Tensor) -> Tensor:
    return value.sum() if np.ndim(value.data) else value


def _shape(text: str | None) -> tuple:
    if text is None:
        return ()
    try:
        shape = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(
            _("--shape {text}: write the shape as sizes separated by commas, e.g. 64,10").format(
                text=text
            )
        ) from None
    if not shape or any(n < 1 for n in shape) or np.prod(shape) > 10**7:
        raise UsageError(
            _("--shape {text}: sizes must be positive (and at most 10**7 elements)").format(
                text=text
            )
        )
    return shape
