"""Korean and Chinese: complete, current gettext catalogs, the language chosen as documented, and
the narration, headers, pattern names and CLI messages in each language."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from i18n_catalogs import LANGUAGES, compiled, extract, po_path

import chainrule as cr
from chainrule import i18n
from chainrule.cli import main
from chainrule.expr import ExpressionError, parse
from chainrule.gate import Gate
from chainrule.notes import chain

_FIELD = re.compile(r"\{(\w*)\}")


def _catalog(lang):
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_in_every_catalog(lang):
    wanted = {m.id for m in extract() if m.id}
    catalog = _catalog(lang)
    have = {m.id for m in catalog if m.id}
    assert wanted - have == set(), f"{lang}: not in the catalog: run python tests/i18n_catalogs.py"
    assert have - wanted == set(), f"{lang}: messages no longer in the source"
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"{lang}: untranslated: {message.id!r}"
        assert not message.fuzzy, f"{lang}: fuzzy: {message.id!r}"
        assert sorted(_FIELD.findall(message.string)) == sorted(_FIELD.findall(message.id)), (
            f"{lang}: the placeholders differ in {message.id!r}"
        )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_compiled_catalogs_are_current(lang):
    import gettext
    import io

    def messages(data):
        catalog = gettext.GNUTranslations(io.BytesIO(data))._catalog
        return {k: v for k, v in catalog.items() if k}

    committed = po_path(lang).with_suffix(".mo").read_bytes()
    assert messages(committed) == messages(compiled(lang)), (
        "stale .mo: run python tests/i18n_catalogs.py"
    )


def test_every_builtin_pattern_name_is_in_the_catalogs():
    import chainrule.nn  # noqa: F401 - registers the fused gates

    def gates(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from gates(sub)

    patterns = {
        g.pattern for g in gates(Gate) if g.__module__.startswith("chainrule") and g.pattern
    }
    assert patterns <= set(i18n.PATTERNS)


def test_the_language_comes_from_the_argument_the_variable_or_the_locale(monkeypatch):
    for variable in ("CHAINRULE_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    with i18n.using(None):
        assert i18n.language() == "en"
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    with i18n.using(None):
        assert i18n.language() == "ko"
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    with i18n.using(None):
        assert i18n.language() == "zh"
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")
    with i18n.using(None):
        assert i18n.language() == "en"
    monkeypatch.setenv("CHAINRULE_LANG", "ko")
    with i18n.using(None):
        assert i18n.language() == "ko"
    with i18n.using("zh"):
        assert i18n.language() == "zh"
    assert i18n.language() == "en"  # using() restored the conftest's choice
    with pytest.raises(ValueError, match="en, ko, zh"):
        i18n.set_language("fr")


def test_explain_speaks_the_language_it_is_given():
    ko = str(cr.explain(chain(), lang="ko"))
    assert ko.splitlines()[0].split() == [
        "#",
        "게이트",
        "입력",
        "출력",
        "국소",
        "상류",
        "그래디언트",
        "패턴",
    ]
    assert "곱셈은 맞바꾼다" in ko and "덧셈은 분배한다" in ko
    zh = cr.explain(chain(), lang="zh")
    assert "乘法交换输入" in str(zh) and ">梯度</th>" in zh._repr_html_()
    x = cr.Value(2.0, name="x")
    assert "分叉处相加" in str(cr.explain(x * x, lang="zh"))
    assert "mul swaps" in str(cr.explain(chain()))
    with pytest.raises(ValueError, match="language"):
        cr.explain(chain(), lang="de")


def test_wide_characters_keep_the_table_aligned():
    lines = str(cr.explain(chain(), lang="zh")).splitlines()
    from chainrule.explain import _width

    dashes = lines[1]
    starts = [m.start() for m in re.finditer(r"-+", dashes)]
    for line in lines[2:]:
        # every column of a row starts where its dashes start, counting wide characters as two
        prefix_widths = {_width(line[:i]) for i in range(len(line) + 1)}
        assert all(s in prefix_widths for s in starts)


def test_the_command_line_speaks_korean_and_chinese(capsys):
    assert main(["explain", "--lang", "ko", "(x + y) * z", "--at", "x=-2", "y=5", "z=-4"]) == 0
    out = capsys.readouterr().out
    assert "\n순전파\n" in out and "\n그래디언트\n" in out and "통과" in out
    assert main(["explain", "--lang", "zh", "x + foo(y)", "--at", "x=1", "y=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule explain: 第 5 列: 未知函数 'foo'")
    assert main(["stage", "--lang", "ko", "2 + 3"]) == 2
    assert "미분할 변수가 없습니다" in capsys.readouterr().err
    with pytest.raises(ExpressionError, match="unknown function"):
        parse("foo(x)")  # the command put the language back


def test_the_demo_tours_in_chinese(tmp_path, capsys):
    assert main(["demo", "--lang", "zh", "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "=== 讲义中的电路: 前向值和梯度 ===" in out and "\n前向传播\n" in out
    assert "神经元 (一个 σ 门)" in out and "=== 写入的文件 ===" in out
