"""Messages in English, Korean and Chinese, through gettext catalogs.

Every message chainrule shows a student (explain's narration, column headers and pattern names,
the ``explain``/``stage`` command's messages, the expression parser's errors) is written in
English in the source and marked with :func:`_` (or :func:`N_` where it is only named);
``locale/<lang>/LC_MESSAGES/chainrule.po`` next to this module holds its Korean (``ko``) and
Chinese (``zh``, simplified) translation, and the compiled ``chainrule.mo`` beside it is what
gettext reads. The ``.mo`` files are committed, so a fresh clone needs no build step.
``python tests/i18n_catalogs.py`` extracts the messages with Babel, updates the ``.po`` files and
compiles them; ``tests/test_i18n.py`` fails while any message is untranslated or a ``.mo`` is
stale.

The language is, in order: the one given (``lang=``, ``--lang``), the ``CHAINRULE_LANG``
environment variable, the locale (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else
English.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

__all__ = [
    "LANGUAGES",
    "N_",
    "PATTERNS",
    "language",
    "resolve",
    "set_language",
    "translation",
    "using",
    "_",
]

LANGUAGES = ("en", "ko", "zh")
"""The languages chainrule speaks."""
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "chainrule"

_current: str | None = None


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark, translate later"
    """Mark ``message`` for the catalogs without translating it here (it is translated where
    it is shown)."""
    return message


PATTERNS = (
    N_("add distributes"),
    N_("mul swaps"),
    N_("max routes"),
    N_("min routes"),
    N_("where routes"),
    N_("fork adds"),
)
"""The built-in gates' pattern names (a gate states its own; these put them in the catalogs)."""


def _check(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang


def _from_environment() -> str:
    """The language of ``CHAINRULE_LANG`` or of the locale variables, else English."""
    wanted = os.environ.get("CHAINRULE_LANG")
    if wanted:
        return _check(wanted)
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if not value:
            continue
        for part in value.split(":"):
            code = part.split(".")[0].split("_")[0].lower()
            if code in LANGUAGES:
                return code
        return "en"
    return "en"


def language() -> str:
    """The current language (``en``, ``ko`` or ``zh``)."""
    global _current
    if _current is None:
        _current = _from_environment()
    return _current


def set_language(lang: str | None) -> str:
    """Use ``lang`` from now on (None: from the environment again); returns the language."""
    global _current
    _current = None if lang is None else _check(lang)
    return language()


@contextmanager
def using(lang: str | None) -> Iterator[str]:
    """Speak ``lang`` inside the block (None: the environment's language), then go back."""
    previous = _current
    try:
        yield set_language(lang)
    finally:
        set_language(previous)


def resolve(lang: str | None) -> str:
    """``lang`` checked, or the current language when None."""
    return language() if lang is None else _check(lang)


def translation(lang: str | None = None) -> gettext.NullTranslations:
    """The catalog of ``lang`` (default: the current language); English is the source text."""
    return _catalog(resolve(lang))


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])


def _(message: str) -> str:
    """``message`` in the current language."""
    return translation(language()).gettext(message)
