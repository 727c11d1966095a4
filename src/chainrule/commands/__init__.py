"""The subcommands of the ``chainrule`` command line, one module each, and what they share: a
one-line user error (:class:`CommandError`), the check of an output folder and argparse types."""

from __future__ import annotations

import argparse
import math
import os
import tempfile


class CommandError(Exception):
    """Bad input or an unusable environment, reported by the CLI on one line (no traceback)
    with exit code ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def writable_folder(path: str) -> str:
    """Create the folder ``path`` if needed and prove it writable by creating and removing a
    file in it, before any work is done; :class:`CommandError` naming the folder otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".chainrule-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        if isinstance(err, FileExistsError) or (os.path.exists(path) and not os.path.isdir(path)):
            reason = "it is a file, not a folder"
        raise CommandError(f"cannot write to output folder {path!r}: {reason}") from None
    return path


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def float_in(minimum: float, maximum: float = math.inf, strict: bool = False):
    """An argparse type: a finite number >= ``minimum`` (> with ``strict``) and < ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > minimum if strict else value >= minimum
        if not math.isfinite(value) or not low_ok or value >= maximum:
            bound = f"> {minimum}" if strict else f">= {minimum}"
            if math.isfinite(maximum):
                bound += f" and < {maximum}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text}")
        return value

    return parse


def add_lang_option(parser: argparse.ArgumentParser) -> None:
    """The ``--lang`` option: the language of the command's messages and narration."""
    from ..i18n import LANGUAGES

    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="language of the messages: en, ko (한국어) or zh (中文) (default: from "
        "CHAINRULE_LANG or the locale, else en)",
    )
