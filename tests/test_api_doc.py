"""docs/api.md is the API reference generated from the docstrings, and it is up to date."""

from __future__ import annotations

from api_doc import MISSING, TARGET, generate


def test_api_reference_is_generated_and_current():
    expected = generate()
    assert MISSING not in expected, "a public name has no docstring: document it"
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    assert current == expected, (
        "docs/api.md is stale: run `python tests/api_doc.py` and commit docs/api.md"
    )


def test_the_reference_lists_the_names_users_look_for():
    text = generate()
    for name in ("`argmax`", "`softmax`", "`cross_entropy`", "`zero_grad`", "`state_dict`"):
        assert name in text
    assert "## `chainrule.nn.functional`" in text and "### `chainrule.Tensor`" in text
