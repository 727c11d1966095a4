"""The command's help reads as plain text, whole, with every default and a --version."""

from __future__ import annotations

import argparse

import pytest

import chainrule
from chainrule.cli import COMMANDS, build_parser, main, plain


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"chainrule {chainrule.__version__}\n"


def test_docstring_markup_is_plain_text():
    assert plain("``chainrule train`` with :class:`chainrule.train.Trainer`") == (
        "chainrule train with chainrule.train.Trainer"
    )
    assert plain(":func:`~chainrule.stage`") == "stage"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_is_plain_whole_and_names_every_default(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    parser = _subparsers()[name]
    text = parser.format_help()
    assert "``" not in text and ":class:" not in text and ":func:" not in text
    description = " ".join(parser.description.split())
    assert description.rstrip().endswith((".", ")")), description
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            if action.help and action.help != argparse.SUPPRESS:
                said = "default" in action.help or "where not given" in action.help
                assert said, (name, action.option_strings)


def test_make_demo_installs_only_what_the_demo_runs():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    stamp_rule = makefile.split("$(STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    (extras,) = re.findall(r"-e '\.\[([\w,-]*)\]'", stamp_rule)
    assert extras == "viz"
    (viz,) = re.findall(r"^viz = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.M)
    assert not re.search(r"torch|pytest|hypothesis", viz)
    assert "demo: $(STAMP)" in makefile and "test: $(TEST_STAMP)" in makefile
