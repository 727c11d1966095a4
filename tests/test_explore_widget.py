"""The explorer's Jupyter widget, run in a real kernel by nbclient: the notebook's saved widget
state holds the circuit's numbers, and changing an input recomputes them in Python."""

from __future__ import annotations

import pytest

from chainrule.draw import dot_program

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("anywidget")
pytest.importorskip("ipykernel")
pytestmark = pytest.mark.skipif(dot_program() is None, reason="Graphviz's dot is needed")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def test_widget_runs_in_a_notebook_and_recomputes_in_python():
    cells = [
        "import chainrule as cr\n"
        "f = cr.explore(lambda x, y, z: (x + y) * z, x=-2.0, y=5.0, z=-4.0)\n"
        "f",
        "f.widget.inputs = {'x': -2.0, 'y': 5.0, 'z': 2.0}  # what the page's field sends\n"
        "print({g['name']: g['grad']['num'] for g in f.widget.data['gradients']})\n"
        "f.widget.inputs = {'x': 'oops', 'y': 5.0, 'z': 2.0}\n"
        "print(repr(f.widget.error))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    client.execute()
    (display,) = [o for o in nb.cells[0].outputs if WIDGET_VIEW in o.get("data", {})]
    model_id = display["data"][WIDGET_VIEW]["model_id"]
    state = nb.metadata["widgets"][WIDGET_STATE]["state"][model_id]["state"]
    assert state["_esm"].lstrip().startswith("// chainrule's circuit explorer")
    assert [s["label"] for s in state["data"]["steps"]] == ["*", "+"]
    grads = {g["name"]: g["grad"]["num"] for g in state["data"]["gradients"]}
    assert grads == {"x": 2.0, "y": 2.0, "z": 3.0}  # the state saved last: z changed to 2
    assert state["inputs"] == {"x": -2.0, "y": 5.0, "z": 2.0}
    assert "input 'x'" in state["error"]
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "{'x': 2.0, 'y': 2.0, 'z': 3.0}" in printed
    assert "input 'x'" in printed.splitlines()[-1]
