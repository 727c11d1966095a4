"""The circuit explorer: step through backprop gate by gate, in the browser and in Jupyter.

``cr.explore(fn, x=-2.0, y=5.0, z=-4.0)`` builds ``fn``'s circuit with chainrule and returns an
:class:`Explorer`. In Jupyter it shows as a live widget (anywidget: changing an input recomputes
the circuit in Python); ``.save("chain.html")`` writes the same page as one self-contained file
that opens from ``file://`` with every step precomputed. ``chainrule explore`` writes that file
for an expression and ``chainrule serve`` runs the page as a local web app. One JavaScript module
(``static/explorer.js``) draws the page in all three.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..explain import DIGITS
from .page import static_html
from .subject import Subject

__all__ = ["Explorer", "explore"]


class Explorer:
    """An explorable circuit: ``data`` (what the page shows), :meth:`update` (new inputs),
    :meth:`save` (a static HTML file) and, in Jupyter, a live ``widget``."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self.data = subject.describe()
        self._widget: Any = None

    @property
    def inputs(self) -> dict[str, Any]:
        """The current input values by name."""
        return dict(self.subject.values)

    def update(self, **inputs: float) -> dict:
        """Recompute the circuit with some numeric inputs changed; returns the new data."""
        self.data = self.subject.describe(inputs)
        if self._widget is not None:
            self._widget.show(self.data, self.subject.values)
        return self.data

    def html(self) -> str:
        """The page as one self-contained HTML document (no network needed)."""
        return static_html(self.data)

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` as one HTML file that opens from ``file://``: stepping,
        clicking and the quiz work; changing inputs needs Jupyter or ``chainrule serve``."""
        path = Path(path)
        path.write_text(self.html(), encoding="utf-8")
        return path

    @property
    def widget(self) -> Any:
        """The Jupyter widget (needs the ``explore`` extra: ``pip install chainrule[explore]``)."""
        if self._widget is None:
            from .widget import ExplorerWidget

            self._widget = ExplorerWidget(self)
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The live widget; without anywidget, the static page in a frame and how to go live."""
        try:
            return self.widget._repr_mimebundle_(**kwargs)
        except ImportError:
            frame = (
                f'<iframe srcdoc="{html.escape(self.html())}" '
                'style="width:100%;height:760px;border:0"></iframe>'
            )
            note = (
                "<p>chainrule.explore: this is the static page; for the live widget install the "
                "<code>explore</code> extra (<code>pip install 'chainrule[explore]'</code>).</p>"
            )
            return {"text/plain": repr(self), "text/html": note + frame}

    def __repr__(self) -> str:
        d = self.data
        return f"Explorer({len(d['wires'])} wires, {len(d['steps'])} steps)"


def explore(
    fn: Callable[..., Any],
    *,
    digits: int = DIGITS,
    title: str = "",
    model: Any = None,
    **inputs: Any,
) -> Explorer:
    """Explore ``fn``'s circuit at ``inputs``: ``cr.explore(lambda x, y, z: (x + y) * z,
    x=-2.0, y=5.0, z=-4.0)``. Numbers become Values and arrays Tensors (floating arrays require
    grad), each named after its keyword; ``fn`` returns a single number. ``model`` (an
    ``nn.Module`` that ``fn`` calls) draws each of its innermost modules as one box that the page
    can expand. ``digits`` is the significant digits shown."""
    return Explorer(Subject(fn, inputs, title=title, digits=digits, model=model))
