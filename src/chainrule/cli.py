"""The ``chainrule`` command line: ``explain``, ``stage``, ``train``, ``demo``.

Each subcommand lives in its own module under ``chainrule.commands`` and registers itself with
``register(subparsers)``, setting ``run(args) -> exit code`` as its handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = ("explain", "stage", "train", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Backpropagation on computational graphs: see, check and run gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"chainrule.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad usage or input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
