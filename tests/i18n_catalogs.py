"""Keep chainrule's gettext catalogs in step with the source (Babel does the work).

``python tests/i18n_catalogs.py`` extracts every message marked with ``_()``/``N_()`` under
``src/chainrule`` (as ``pybabel extract -k N_`` would over the package) into
``src/chainrule/locale/chainrule.pot``, updates ``ko`` and ``zh``'s ``chainrule.po`` from it
(keeping their translations; a new message arrives untranslated, which ``tests/test_i18n.py``
refuses) and compiles each ``chainrule.mo``. Translate in the ``.po`` files, then run it again.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "src" / "chainrule" / "locale"
TEMPLATE = LOCALE / "chainrule.pot"
LANGUAGES = ("ko", "zh")
KEYWORDS = {"_": None, "N_": None}
FIXED_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def extract() -> Catalog:
    """The messages of the source, as a template catalog."""
    template = Catalog(project="chainrule", fuzzy=False)
    method_map = [("src/chainrule/**.py", "python")]
    for _filename, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, keywords=KEYWORDS
    ):
        template.add(message)
    return template


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "chainrule.po"


def compiled(lang: str) -> bytes:
    """The ``.mo`` bytes of ``lang``'s ``.po`` file."""
    with po_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    catalog.creation_date = catalog.revision_date = FIXED_DATE  # the same bytes on every run
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def _write_po(path: Path, catalog: Catalog) -> None:
    out = io.BytesIO()
    write_po(out, catalog, omit_header=True, no_location=True, sort_output=True, width=100)
    path.write_bytes(out.getvalue())


def main() -> None:
    template = extract()
    _write_po(TEMPLATE, template)
    for lang in LANGUAGES:
        path = po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=lang)
        else:
            catalog = Catalog(locale=lang, project="chainrule")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _write_po(path, catalog)
        path.with_suffix(".mo").write_bytes(compiled(lang))
        print(f"wrote {path.relative_to(ROOT)} and its .mo")


if __name__ == "__main__":
    main()
