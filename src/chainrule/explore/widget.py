"""The explorer as a Jupyter widget (anywidget: Jupyter, JupyterLab, VS Code, marimo).

The widget's model holds ``data`` (what the page shows), ``inputs`` and ``error``; the page
writes ``inputs`` when a number field or slider changes, and Python rebuilds the circuit with
chainrule and sends the new ``data`` back. The same ES module draws the static page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .subject import plain

__all__ = ["ExplorerWidget"]

_STATIC = Path(__file__).parent / "static"


class ExplorerWidget(anywidget.AnyWidget):
    """The live page of an :class:`chainrule.explore.Explorer`."""

    _esm = _STATIC / "explorer.js"
    _css = _STATIC / "explorer.css"
    data = traitlets.Dict().tag(sync=True)
    inputs = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    mode = traitlets.Unicode("live").tag(sync=True)

    def __init__(self, explorer: Any) -> None:
        numbers = _plain_inputs(explorer.inputs)
        self._explorer = explorer
        self._showing = True
        super().__init__(data=explorer.data, inputs=numbers)
        self._showing = False

    def show(self, data: dict, inputs: dict) -> None:
        """Show new data (after the explorer recomputed) without recomputing again."""
        self._showing = True
        try:
            self.inputs = _plain_inputs(inputs)
            self.data = data
            self.error = ""
        finally:
            self._showing = False

    @traitlets.observe("inputs")
    def _recompute(self, change: dict) -> None:
        if self._showing:
            return
        current = _plain_inputs(self._explorer.inputs)
        changed = {n: v for n, v in change["new"].items() if current.get(n) != v}
        if not changed:
            return
        try:
            self._explorer.update(**changed)
        except (ValueError, TypeError, ArithmeticError) as exc:
            lines = str(exc).strip().splitlines()
            self.show(self._explorer.data, self._explorer.inputs)  # the fields show what is shown
            self.error = lines[0] if lines else type(exc).__name__


def _plain_inputs(inputs: dict) -> dict:
    """The inputs the page can show and change: numbers, and small arrays as nested lists."""
    return {n: p for n, p in ((n, plain(v)) for n, v in inputs.items()) if p is not None}
