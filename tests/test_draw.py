"""cr.draw: the DOT structure of the notes' circuits, colours, collapsing, tensors, rendering."""

import importlib
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.notes import chain, neuron, patterns, staged

draw_module = importlib.import_module("chainrule.draw")
needs_dot = pytest.mark.skipif(draw_module.dot_program() is None, reason="Graphviz not installed")

_NODE = re.compile(r"^\s*(\w+) \[(.*)\];$")
_EDGE = re.compile(r"^\s*(\w+)(?::\w+)? -> (\w+)(?::\w+)?")


def _parse(dot):
    """Nodes (id -> attribute text) and edges (tail, head) of our DOT output."""
    nodes, edges = {}, []
    for line in dot.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.append(edge.groups())
            continue
        node = _NODE.match(line)
        if node:
            nodes[node.group(1)] = node.group(2)
    return nodes, edges


def _label(attrs):
    return re.search(r'label="((?:[^"\\]|\\.)*)"', attrs).group(1)


def _colored(attrs, color):
    """The lines of text in ``color`` (blank padding lines left out)."""
    found = re.findall(rf'COLOR="{color}" POINT-SIZE="11">(.*?)</FONT>', attrs)
    return [s for text in found for s in text.split("<BR/>") if s != "&#160;"]


def _structure(diagram):
    """The circuit as drawn: {gate node: (label, [labels of what feeds it])}, plus each wire's
    (value, gradient) text keyed by the label of the node it leaves."""
    nodes, edges = _parse(diagram.dot)
    into = {}
    for tail, head in edges:
        into.setdefault(head, []).append(tail)
    gates = {}
    wires = {}
    for nid, attrs in nodes.items():
        if nid.startswith("w"):
            (source,) = into[nid]
            green = _colored(attrs, draw_module.GREEN)
            red = _colored(attrs, draw_module.RED)
            wires.setdefault(_label(nodes[source]), []).append((green, red))
    for nid, attrs in nodes.items():
        if "shape=circle" in attrs:
            feeders = [_label(nodes[into[w][0]]) for w in into[nid]]
            gates[nid] = (_label(attrs), feeders)
    return nodes, edges, gates, wires


def test_chain_diagram_structure_values_and_gradients():
    d = cr.draw(chain())
    assert isinstance(d, cr.Diagram) and d.dot.startswith("digraph circuit {")
    nodes, edges, gates, wires = _structure(d)
    assert sorted(gates.values()) == [("*", ["+", "z"]), ("+", ["x", "y"])]
    assert wires["x"] == [(["-2.00"], ["-4.00"])]
    assert wires["y"] == [(["5.00"], ["-4.00"])]
    assert wires["z"] == [(["-4.00"], ["3.00"])]
    assert wires["+"] == [(["3.00"], ["-4.00"])]
    assert wires["*"] == [(["-12.00"], ["1.00"])]
    assert _label(nodes["result"]) == "f"
    assert len(edges) == 5 + 4 + 1
    assert "rankdir=LR" in d.dot


def test_value_sits_above_the_line_and_gradient_below():
    nodes, _, _, _ = _structure(cr.draw(chain()))
    wire = next(a for n, a in nodes.items() if n.startswith("w"))
    green, line, red = (
        wire.index(draw_module.GREEN),
        wire.index('BGCOLOR="'),
        wire.index(draw_module.RED),
    )
    assert green < line < red


def test_neuron_diagram_has_the_notes_gates_and_numbers():
    _, _, gates, wires = _structure(cr.draw(neuron()))
    labels = sorted(label for label, _ in gates.values())
    assert labels == sorted(["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"])
    assert ("*", ["w0", "x0"]) in gates.values() and ("1/x", ["+1"]) in gates.values()
    assert wires["x0"] == [(["-1.00"], ["0.39"])]
    assert wires["w0"] == [(["2.00"], ["-0.20"])]
    assert wires["1/x"] == [(["0.73"], ["1.00"])]
    assert wires["+1"] == [(["1.37"], ["-0.53"])]
    assert wires["exp"] == [(["0.37"], ["-0.53"])]
    assert wires["*-1"] == [(["-1.00"], ["-0.20"])]


def test_collapse_sigmoid_draws_one_sigma_gate():
    _, _, gates, wires = _structure(cr.draw(neuron(), collapse="sigmoid"))
    labels = sorted(label for label, _ in gates.values())
    assert labels == sorted(["*", "*", "+", "+", "σ"])
    assert ("σ", ["+"]) in gates.values()
    assert wires["σ"] == [(["0.73"], ["1.00"])]


def test_collapse_by_explicit_group():
    out = neuron()
    dot_node = next(w.node for w in cr.trace(out) if w.name == "dot")
    _, _, gates, _ = _structure(cr.draw(out, collapse=[(out, dot_node, "sig")]))
    assert ("sig", ["+"]) in gates.values() and len(gates) == 5
    group = draw_module.Group(out, (dot_node,), "σ")
    assert "σ" in cr.draw(out, collapse=[group]).dot


def test_collapse_refuses_bad_groups():
    out = neuron()
    wires = {w.name: w.node for w in cr.trace(out)}
    with pytest.raises(ValueError, match="reaches input 'w2'"):
        cr.draw(out, collapse=[(out, wires["t3"], "g")])
    x = cr.Value(1.0, name="x")
    y = x.exp()
    q = y + 1
    with pytest.raises(ValueError, match="also used"):
        cr.draw(q * y, collapse=[(q, x, "g")])
    with pytest.raises(ValueError, match="not known"):
        cr.draw(out, collapse="tanh")
    with pytest.raises(ValueError, match="not a gate's output"):
        cr.draw(out, collapse=[(wires["w0"], (), "g")])
    with pytest.raises(ValueError, match="overlap"):
        cr.draw(out, collapse=[(out, wires["dot"], "a"), (out, wires["dot"], "b")])


def test_a_primitive_sigmoid_whose_inside_is_reused_is_not_collapsed():
    x = cr.Value(0.5, name="x")
    e = (-x).exp()
    out = 1 / (1 + e) + e
    _, _, gates, _ = _structure(cr.draw(out, collapse="sigmoid"))
    assert "σ" not in [label for label, _ in gates.values()]


def test_patterns_and_staged_structure():
    _, _, gates, wires = _structure(cr.draw(patterns()))
    assert sorted(gates.values()) == sorted(
        [("*", ["x", "y"]), ("max", ["z", "w"]), ("+", ["*", "max"]), ("*2", ["+"])]
    )
    assert wires["w"] == [(["-1.00"], ["0.00"])] and wires["x"] == [(["3.00"], ["-8.00"])]
    _, edges, gates, wires = _structure(cr.draw(staged()))
    assert sorted(label for label, _ in gates.values()) == sorted(
        ["σ", "+", "σ", "+", "**2", "+", "1/x", "*"]
    )
    # x fans out to three gates through one wire carrying its total gradient
    assert wires["x"] == [(["3.00"], ["2.06"])]
    x_wire = next(h for t, h in edges if t == "n0")
    assert sum(1 for t, _ in edges if t == x_wire) == 3


def test_values_and_grads_can_be_turned_off():
    d = cr.draw(chain(), grads=False)
    assert draw_module.RED not in d.dot and draw_module.GREEN in d.dot
    d = cr.draw(chain(), values=False)
    assert ">-2.00<" not in d.dot and ">-4.00<" in d.dot


def test_rankdir_and_its_validation():
    assert "rankdir=TB" in cr.draw(chain(), rankdir="TB").dot
    assert 'WIDTH="1"' in cr.draw(chain(), rankdir="TB").dot
    with pytest.raises(ValueError, match="rankdir"):
        cr.draw(chain(), rankdir="sideways")


def test_tensors_show_shape_dtype_and_small_values():
    W = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    x = cr.tensor(np.ones((3, 1), np.float32).astype(np.float64), requires_grad=True, name="x")
    big = cr.tensor(np.ones((4, 5)), requires_grad=True, name="big")
    out = (W @ x).sum() + big.sum()
    _, _, gates, wires = _structure(cr.draw(out))
    assert ("@", ["W", "x"]) in gates.values()
    assert wires["W"] == [
        (
            ["(2,3) float64", "0.00 1.00 2.00", "3.00 4.00 5.00"],
            ["1.00 1.00 1.00", "1.00 1.00 1.00"],
        )
    ]
    assert wires["big"] == [(["(4,5) float64"], ["(4,5) float64"])]


def test_constants_are_drawn_by_value_without_gradient():
    x = cr.Value(3.0, name="x")
    nodes, _, gates, wires = _structure(cr.draw(x / 4))
    assert ("/", ["x", "4.00"]) in gates.values()
    assert wires["4.00"] == [(["4.00"], [])]


def test_after_backward_released_the_cache_the_leaves_grads_are_shown():
    out = chain()
    out.backward()
    _, _, _, wires = _structure(cr.draw(out))
    assert wires["x"] == [(["-2.00"], ["-4.00"])]
    assert wires["+"] == [(["3.00"], [])]


def test_drawing_is_deterministic_and_reads_names_safely():
    x = cr.Value(1.0, name='a"b')
    d1, d2 = cr.draw(x * 2), cr.draw(x * 2)
    assert d1.dot == d2.dot and 'label="a\\"b"' in d1.dot
    assert str(d1) == d1.dot and "edges" in repr(d1)


@needs_dot
def test_svg_png_and_save(tmp_path):
    d = cr.draw(neuron())
    svg = d.svg()
    assert "<svg" in svg and "1/x" in svg and "0.73" in svg
    assert d._repr_svg_() == svg
    assert d.png().startswith(b"\x89PNG")
    assert d.save(tmp_path / "n.svg").read_text().count("<svg") == 1
    assert (tmp_path / "n.dot").exists() is False
    d.save(tmp_path / "n.dot")
    assert (tmp_path / "n.dot").read_text() == d.dot
    assert d.save(tmp_path / "n.png").read_bytes().startswith(b"\x89PNG")
    assert d.save(tmp_path / "plain", fmt="svg").read_text().startswith("<?xml")


def test_without_graphviz_dot_text_still_works_and_rendering_says_how(monkeypatch, tmp_path):
    monkeypatch.setattr(draw_module, "dot_program", lambda: None)
    d = cr.draw(chain())
    assert d._repr_svg_() is None
    with pytest.raises(draw_module.GraphvizMissing, match="apt-get install graphviz"):
        d.svg()
    assert d.save(tmp_path / "c.dot").read_text() == d.dot


def test_named_intermediate_values_carry_their_name_in_grey():
    d = cr.draw(staged())
    grey = re.findall(rf'COLOR="{draw_module.GREY}" POINT-SIZE="10">(\w+) <', d.dot)
    assert sorted(grey) == sorted(["sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden"])
    assert not re.findall(rf'COLOR="{draw_module.GREY}"', cr.draw(patterns()).dot)


def test_a_many_element_output_draws_gradients_given_its_upstream_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 3
    _, _, _, wires = _structure(cr.draw(y))
    assert wires["x"] == [(["(2,) float64", "1.00 2.00"], [])]
    _, _, _, wires = _structure(cr.draw(y, grad=np.array([1.0, -1.0])))
    assert wires["x"] == [(["(2,) float64", "1.00 2.00"], ["3.00 -3.00"])]
