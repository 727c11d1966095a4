"""The ``chainrule`` command line: ``explain``, ``stage``, ``explore``, ``serve``, ``train``,
``check``, ``demo``.

Each subcommand lives in its own module under ``chainrule.commands`` and registers itself with
``register(subparsers)``, setting ``run(args) -> exit code`` as its handler.

A user error never ends in a traceback: bad usage is one line and exit 2, a
:class:`~chainrule.commands.CommandError` one line and its code, Ctrl-C one line and exit 130,
running out of memory one line and exit 1, and output piped into a reader that stops early
(``| head``) one line and exit 141 (as a shell reports SIGPIPE). A terminal that cannot show a
character (a non-UTF-8 locale) gets a replacement character instead of an error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence

from . import __version__
from .commands import CommandError

COMMANDS = ("explain", "stage", "explore", "serve", "train", "check", "demo")


_ROLE = re.compile(r":\w+:`(~?)([^`]+)`")


def plain(text: str) -> str:
    """Docstring markup as a terminal shows it: ``code``, :class:`mod.Name` and
    :class:`~mod.Name` become code, mod.Name and Name (help texts are written once, as
    docstrings)."""
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    return text.replace("``", "")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, reading descriptions and help texts through :func:`plain`."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return plain(super()._expand_help(action))


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage block is in ``--help``) and plain-text help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    command_hint = "explain"  # the subcommand named in hints; main() sets the one typed

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = ""
        stray = (
            message.split("unrecognized arguments: ", 1)[-1] if "unrecognized" in message else ""
        )
        if "required: expression" in message or (stray[:1] == "-" and stray[1:2] != "-"):
            command = self.prog if " " in self.prog else f"{self.prog} {self.command_hint}"
            hint = f"; an expression starting with '-' goes last, after --: {command} -- -x"
        self.exit(2, f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = _Parser(
        prog="chainrule",
        description="Backpropagation on computational graphs: see, check and run gradients.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in COMMANDS:
        importlib.import_module(f"chainrule.commands.{name}").register(sub)
    return parser


def _tolerate_narrow_terminals() -> None:
    """Print what the terminal's encoding cannot show as a replacement character."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
            reconfigure(errors="replace")


def one_line_warnings(command: str, show: Callable) -> Callable:
    """A ``warnings.showwarning`` that prints chainrule's own warnings (``cr.JitWarning``...) as
    one line, ``chainrule <command>: warning: ...``, and hands others to ``show``."""

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if category.__module__.startswith("chainrule."):
            print(f"chainrule {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad usage or input)."""
    _tolerate_narrow_terminals()
    parser = build_parser()
    typed = list(sys.argv[1:] if argv is None else argv)
    if typed and typed[0] in COMMANDS:
        parser.command_hint = typed[0]
    args = parser.parse_args(typed)
    args.argv = typed  # for commands that relaunch
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warnings(args.command, warnings.showwarning)
            code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except CommandError as err:
        print(f"chainrule {args.command}: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(
            f"chainrule {args.command}: out of memory (try smaller sizes or shapes)",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): send the rest of the output nowhere, say so once.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        print(f"chainrule {args.command}: output closed early (broken pipe)", file=sys.stderr)
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
