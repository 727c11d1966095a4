"""The explorer's HTML pages: the self-contained static file and the page ``chainrule serve``
serves. Both run the one ES module ``static/explorer.js``; the static file inlines it with the
stylesheet and the data, so it opens from ``file://`` with nothing fetched."""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["asset", "served_html", "static_html"]


@cache
def asset(name: str) -> str:
    """The text of a file in ``chainrule/explore/static`` (``explorer.js``, ``explorer.css``)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def _page(title: str, head: str, script: str, payload: Any) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n{head}\n"
        "<style>body { margin: 12px; }</style>\n</head>\n<body>\n"
        '<div id="chainrule-explorer"></div>\n'
        f'<script type="application/json" id="chainrule-data">{_json(payload)}</script>\n'
        f'<script type="module">\n{script}\n</script>\n</body>\n</html>\n'
    )


def static_html(data: dict) -> str:
    """One HTML document holding the module, its stylesheet and ``data``: every step is
    precomputed; the inputs are shown but cannot change (the page says so)."""
    module = asset("explorer.js")
    if "</script" in module.lower():
        raise RuntimeError("explorer.js must not contain '</script' to be inlined")
    script = (
        f"{module}\n"
        'const payload = JSON.parse(document.getElementById("chainrule-data").textContent);\n'
        'mount(document.getElementById("chainrule-explorer"), staticModel(payload));'
    )
    title = f"chainrule explore: {data.get('title') or 'circuit'}"
    return _page(title, f"<style>\n{asset('explorer.css')}\n</style>", script, data)


def served_html(initial: dict) -> str:
    """The page of ``chainrule serve``: it loads ``explorer.js`` and ``explorer.css`` from the
    server and posts changed inputs or expressions to ``api/explore``."""
    script = (
        'import { mount, httpModel } from "./explorer.js";\n'
        'const initial = JSON.parse(document.getElementById("chainrule-data").textContent);\n'
        'mount(document.getElementById("chainrule-explorer"), httpModel("./api/explore", initial));'
    )
    head = '<link rel="stylesheet" href="./explorer.css">'
    return _page("chainrule serve", head, script, initial)
