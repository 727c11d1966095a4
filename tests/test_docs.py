"""The documentation's code runs and prints what the documentation says it prints.

Every ```python block of docs/tutorial.md (and of README.md, where it has any) is executed in
order, in one namespace per file, inside a temporary working directory. Conventions:

- a ```python block immediately followed by a ```text block must print exactly that text;
- a ```console block's ``$ chainrule ...`` (or ``$ .venv/bin/chainrule ...``) lines are run
  through ``chainrule.cli.main`` in the same directory; each must exit with 0 and, when lines
  follow it, print exactly those lines (wall-clock times such as ``0.22 s`` and ``0:00:01``
  are masked before comparing); other ``$`` lines (installing) are not run;
- a ```python block whose first line is ``# doc-test: skip`` is not run.

The code executed is this repository's own documentation, never user input.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainrule.cli import main

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
README = ROOT / "README.md"
SKIP = "# doc-test: skip"

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_TIMES = re.compile(r"\b\d+:\d\d:\d\d\b|\b\d+\.\d+ s\b")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language tag, its text and the line it starts on."""

    lang: str
    text: str
    line: int


def blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order."""
    return [
        Block(m.group(1), m.group(2), markdown.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(markdown)
    ]


def python_runs(markdown: str) -> list[tuple[Block, str | None]]:
    """Each ```python block with the ```text block that follows it (its expected output), if any."""
    found = blocks(markdown)
    runs = []
    for k, block in enumerate(found):
        if block.lang != "python":
            continue
        after = found[k + 1] if k + 1 < len(found) else None
        runs.append((block, after.text if after is not None and after.lang == "text" else None))
    return runs


def console_commands(markdown: str) -> list[tuple[Block, str, str]]:
    """Each ``$ chainrule ...`` line of the ```console blocks with the output printed below it."""
    commands = []
    for block in blocks(markdown):
        if block.lang != "console":
            continue
        parts = re.split(r"^\$ ", block.text, flags=re.MULTILINE)[1:]
        for part in parts:
            command, _, output = part.partition("\n")
            command = command.removeprefix(".venv/bin/")  # the README's way to reach it
            if command.startswith("chainrule "):
                commands.append((block, command, output))
    return commands


def _normal(text: str) -> str:
    """``text`` without trailing spaces or blank edge lines, and with times masked."""
    lines = [_TIMES.sub("<time>", line).rstrip() for line in text.strip("\n").splitlines()]
    return "\n".join(lines)


def run_python(path: Path, markdown: str) -> list[tuple[Block, str, str | None]]:
    """Execute the python blocks of one file in one namespace; (block, printed, expected)."""
    namespace: dict = {"__name__": f"doc_{path.stem}"}
    results = []
    for block, expected in python_runs(markdown):
        if block.text.startswith(SKIP):
            continue
        out = io.StringIO()
        code = compile(block.text, f"{path.name}:{block.line}", "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)  # noqa: S102 - our own documentation, see the module docstring
        results.append((block, out.getvalue(), expected))
    return results


def run_console(markdown: str) -> list[tuple[Block, str, int, str, str]]:
    """Run the ``$ chainrule`` commands; (block, command, exit code, printed, expected)."""
    results = []
    for block, command, expected in console_commands(markdown):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(shlex.split(command)[1:])
        results.append((block, command, code, out.getvalue(), expected))
    return results


def _check_file(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    markdown = path.read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")  # rich lays the train report out for 80 columns
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    checked = 0
    for block, printed, expected in run_python(path, markdown):
        checked += 1
        if expected is not None:
            assert _normal(printed) == _normal(expected), (
                f"{path.name}: the output of the python block at line {block.line} changed"
            )
    for block, command, code, printed, expected in run_console(markdown):
        checked += 1
        assert code == 0, f"{path.name}:{block.line}: `{command}` exited with {code}"
        assert not expected.strip() or _normal(printed) == _normal(expected), (
            f"{path.name}:{block.line}: the output of `{command}` changed"
        )
    return checked


def test_tutorial_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    assert _check_file(TUTORIAL, tmp_path, monkeypatch) > 0


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    if not README.exists() or not python_runs(README.read_text(encoding="utf-8")):
        pytest.skip("README.md has no python blocks")
    _check_file(README, tmp_path, monkeypatch)


def test_tutorial_images_exist():
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TUTORIAL.read_text(encoding="utf-8"))
    assert linked
    missing = [p for p in linked if not (TUTORIAL.parent / p).is_file()]
    assert not missing, f"docs/tutorial.md links missing images: {missing}"


def test_changed_output_is_caught(tmp_path, monkeypatch):
    markdown = "```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n"
    doc = tmp_path / "doc.md"
    doc.write_text(markdown, encoding="utf-8")
    ((block, printed, expected),) = run_python(doc, markdown)
    assert (printed, expected) == ("2\n", "3\n")
    with pytest.raises(AssertionError, match="line 1 changed"):
        _check_file(doc, tmp_path, monkeypatch)


def test_skip_marker_and_console_parsing():
    markdown = (
        "```python\n# doc-test: skip\nraise SystemExit\n```\n"
        '```console\n$ pip install x\n$ chainrule stage "x * y"\nsome output\n```\n'
    )
    assert run_python(Path("doc.md"), markdown) == []
    ((_, command, output),) = console_commands(markdown)
    assert (command, output) == ('chainrule stage "x * y"', "some output\n")
