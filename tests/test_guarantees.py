"""docs/guarantees.md names a test for every promise: each named test file and test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_guarantees_page_names_exists():
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    missing, current = [], None
    for path, name in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", text):
        if path:
            current = path
            if not (ROOT / path).is_file():
                missing.append(path)
        if name:
            source = (ROOT / current).read_text(encoding="utf-8")
            if not re.search(rf"^def {name}\(", source, re.M):
                missing.append(f"{current}::{name}")
    assert not missing, f"docs/guarantees.md names tests that do not exist: {missing}"
