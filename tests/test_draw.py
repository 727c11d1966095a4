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
        if 'class="gate"' in attrs or 'class="group"' in attrs:
            feeders = [_label(nodes[_source(into, w)]) for w in into[nid]]
            gates[nid] = (_label(attrs), feeders)
    return nodes, edges, gates, wires


def _source(into, nid):
    """The g-node a wire label or a fork's branch comes from."""
    while not nid.startswith("g"):
        (nid,) = into[nid]
    return nid


def test_chain_diagram_structure_values_and_gradients():
    d = cr.draw(chain())
    assert isinstance(d, cr.Diagram) and d.dot.startswith("digraph circuit {")
    nodes, edges, gates, wires = _structure(d)
    assert sorted(gates.values()) == [("*", ["+", "z"]), ("+", ["x", "y"])]
    assert wires["x"] == [(["-2"], ["-4"])]
    assert wires["y"] == [(["5"], ["-4"])]
    assert wires["z"] == [(["-4"], ["3"])]
    assert wires["+"] == [(["3"], ["-4"])]
    assert wires["*"] == [(["-12"], ["1"])]
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
    assert wires["x0"] == [(["-1"], ["0.393"])]
    assert wires["w0"] == [(["2"], ["-0.197"])]
    assert wires["1/x"] == [(["0.731"], ["1"])]
    assert wires["+1"] == [(["1.37"], ["-0.534"])]
    assert wires["exp"] == [(["0.368"], ["-0.534"])]
    assert wires["*-1"] == [(["-1"], ["-0.197"])]


def test_collapse_sigmoid_draws_one_sigma_gate():
    _, _, gates, wires = _structure(cr.draw(neuron(), collapse="sigmoid"))
    labels = sorted(label for label, _ in gates.values())
    assert labels == sorted(["*", "*", "+", "+", "σ"])
    assert ("σ", ["+"]) in gates.values()
    assert wires["σ"] == [(["0.731"], ["1"])]


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
    assert wires["w"] == [(["-1"], ["0"])] and wires["x"] == [(["3"], ["-8"])]
    _, edges, gates, wires = _structure(cr.draw(staged()))
    assert sorted(label for label, _ in gates.values()) == sorted(
        ["σ", "+", "σ", "+", "**2", "+", "1/x", "*"]
    )
    # x fans out to three gates: its wire carries the total gradient into a copy gate, and
    # each branch the gradient of its own use; the branches add up to the trunk
    assert wires["x"] == [(["3"], ["2.06"])]
    nodes, _ = _parse(cr.draw(staged()).dot)
    x_wire = next(h for t, h in edges if t == "g0")
    (copy,) = [h for t, h in edges if t == x_wire]
    assert copy == "f0" and 'class="copy"' in nodes[copy]
    branches = [h for t, h in edges if t == copy]
    assert branches == ["b0_0", "b0_1", "b0_2"]
    red = [float(_colored(nodes[b], draw_module.RED)[0]) for b in branches]
    assert red == [0.512, -0.0358, 1.58] and sum(red) == pytest.approx(2.06, abs=0.01)
    assert all(not _colored(nodes[b], draw_module.GREEN) for b in branches)


def test_values_and_grads_can_be_turned_off():
    d = cr.draw(chain(), grads=False)
    assert draw_module.RED not in d.dot and draw_module.GREEN in d.dot
    d = cr.draw(chain(), values=False)
    assert ">-2<" not in d.dot and ">-4<" in d.dot


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
            ["(2,3) float64", "0 1 2", "3 4 5"],
            ["1 1 1", "1 1 1"],
        )
    ]
    assert wires["big"] == [(["(4,5) float64"], ["(4,5) float64"])]


def test_constants_are_drawn_by_value_without_gradient():
    x = cr.Value(3.0, name="x")
    nodes, _, gates, wires = _structure(cr.draw(x / 4))
    assert ("/", ["x", "4"]) in gates.values()
    assert wires["4"] == [(["4"], [])]


def test_after_backward_the_picture_is_the_one_before():
    before = cr.draw(neuron()).dot
    out = neuron()
    out.backward()
    assert cr.draw(out).dot == before
    _, _, _, wires = _structure(cr.draw(out))
    assert wires["+1"] == [(["1.37"], ["-0.534"])]


def test_drawing_is_deterministic_and_reads_names_safely():
    x = cr.Value(1.0, name='a"b')
    d1, d2 = cr.draw(x * 2), cr.draw(x * 2)
    assert d1.dot == d2.dot and 'label="a\\"b"' in d1.dot
    assert str(d1) == d1.dot and "edges" in repr(d1)


@needs_dot
def test_svg_png_and_save(tmp_path):
    d = cr.draw(neuron())
    svg = d.svg()
    assert "<svg" in svg and "1/x" in svg and "0.731" in svg
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
    d = cr.draw(y)
    _, _, _, wires = _structure(d)
    assert wires["x"] == [(["(2,) float64", "1 2"], [])]
    assert "no gradients: the output has 2 elements, so pass grad=" in d.note
    assert d.note in d.dot
    _, _, _, wires = _structure(cr.draw(y, grad=np.array([1.0, -1.0])))
    assert wires["x"] == [(["(2,) float64", "1 2"], ["3 -3"])]


def test_every_element_has_a_stable_documented_id_and_class():
    d = cr.draw(staged())
    nodes, edges = _parse(d.dot)
    circuit = cr.trace(staged())
    for wire in circuit:
        assert f'id="g{wire.index}"' in nodes[f"g{wire.index}"]
        assert f'id="w{wire.index}"' in nodes[f"w{wire.index}"]
    classes = {
        re.search(r'class="(\w+)"', a).group(1)
        for n, a in nodes.items()
        if n not in ("node", "edge")
    }
    assert classes == {"leaf", "gate", "wire", "copy", "branch", "result"}
    for line in d.dot.splitlines():
        edge = _EDGE.match(line)
        if edge:
            assert f'id="e_{edge.group(1)}_{edge.group(2)}"' in line
    assert cr.draw(staged()).dot == d.dot


@needs_dot
def test_svg_carries_the_ids():
    svg = cr.draw(chain()).svg()
    for element in ('id="g0"', 'id="w0"', 'id="result"', 'id="e_w0_g2"', 'class="node gate"'):
        assert element in svg


def test_a_value_used_twice_by_one_gate_has_two_branches():
    x = cr.Value(3.0, name="x")
    nodes, edges, gates, wires = _structure(cr.draw(x * x))
    assert wires["x"] == [(["3"], ["6"])]
    assert [h for t, h in edges if t == "f0"] == ["b0_0", "b0_1"]
    assert [_colored(nodes[b], draw_module.RED) for b in ("b0_0", "b0_1")] == [["3"], ["3"]]
    assert gates["g1"] == ("*", ["x", "x"])


def test_a_value_used_once_has_no_copy_gate():
    assert 'class="copy"' not in cr.draw(chain()).dot


def test_digits_are_significant_digits_like_explain():
    _, _, _, wires = _structure(cr.draw(neuron(), digits=5))
    assert wires["1/x"] == [(["0.73106"], ["1"])]
    with pytest.raises(ValueError, match="digits"):
        cr.draw(neuron(), digits=0)


def _used(n):
    x = cr.Value(1.0, name="x")
    y = x
    for _ in range(n - 1):
        y = y + x
    return y


def test_high_fan_out_along_a_chain_is_drawn_collapsed_with_a_note():
    d = cr.draw(_used(100))
    assert d.note and "drawn collapsed" in d.note and "note: drawn collapsed" in d.dot
    _, _, gates, wires = _structure(d)
    assert list(gates.values()) == [("+ (99)", ["x"])]
    assert wires["x"] == [(["1"], ["100"])]
    assert "drawn collapsed" in repr(d)
    assert cr.draw(_used(10)).note is None
    full = cr.draw(_used(100), max_gates=None)
    assert full.note is None and full.dot.count('class="branch"') == 100


def test_more_gates_than_max_gates_are_drawn_as_fan_out_free_groups():
    x, y = cr.Value(0.5, name="x"), cr.Value(2.0, name="y")
    a = (x * y).tanh().exp()
    out = a * a + (a + y).sigmoid()
    d = cr.draw(out, max_gates=3)
    assert "7 gates are more than max_gates=3" in d.note
    _, _, gates, _ = _structure(d)
    assert sorted(gates.values()) == [("+ (4)", ["y", "exp (3)"]), ("exp (3)", ["x", "y"])]
    assert cr.draw(out, collapse="groups").note is None


@needs_dot
def test_high_fan_out_renders_in_seconds():
    import time

    start = time.perf_counter()
    cr.draw(_used(100)).svg()
    cr.draw(_used(30)).svg()
    assert time.perf_counter() - start < 20  # generous: a shared machine; typically < 1 s


def test_a_slow_layout_is_a_clean_error(monkeypatch):
    import subprocess

    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(draw_module, "dot_program", lambda: "/usr/bin/dot")
    monkeypatch.setattr(draw_module.subprocess, "run", slow)
    d = cr.draw(chain())
    with pytest.raises(draw_module.GraphvizTimeout, match="within 2 s.*collapse"):
        d.render("svg", timeout=2)
    assert d._repr_svg_() is None


def test_without_graphviz_the_repr_says_what_to_install(monkeypatch):
    monkeypatch.setattr(draw_module, "dot_program", lambda: None)
    text = repr(cr.draw(chain()))
    assert "not installed" in text and "apt-get install graphviz" in text
    assert "brew install graphviz" in text


def _two_layer_loss():
    from chainrule import nn
    from chainrule.nn import functional as F

    x, y = cr.data.spiral(n_per_class=4, classes=3, seed=0)
    model = nn.Sequential(nn.Linear(2, 5, seed=0), nn.ReLU(), nn.Linear(5, 3, seed=1))
    return F.cross_entropy(model(x), y)


def test_a_two_layer_net_is_drawn_with_the_names_of_its_world():
    nodes, _, gates, wires = _structure(cr.draw(_two_layer_loss()))
    labels = sorted(label for label, _ in gates.values())
    assert labels == sorted(["xWᵀ+b", "relu", "xWᵀ+b", "CE"])
    assert ("xWᵀ+b", ["x", "0.weight", "0.bias"]) in gates.values()
    assert _label(nodes["result"]) == "loss"
    assert wires["x"] == [(["(12,2) float64"], [])]
    assert wires["0.weight"][0][1] == ["(5,2) float64"]


@needs_dot
def test_a_two_layer_nets_picture_runs_left_to_right_by_layer():
    svg = cr.draw(_two_layer_loss()).svg()
    xs = {}
    for body in re.findall(r'<g id="g\d+" class="node (?:gate|group)">(.*?)</g>', svg, re.S):
        title = re.search(r'xlink:title="(\w+)', body).group(1)
        xs.setdefault(title, []).append(float(re.search(r'cx="([-\d.]+)"', body).group(1)))
    first, second = sorted(xs["linear"])
    assert first < xs["relu"][0] < second < xs["cross_entropy"][0]


def test_jupyter_shows_the_picture_or_what_to_install(monkeypatch):
    formatters = pytest.importorskip("IPython.core.formatters")
    if draw_module.dot_program() is not None:
        bundle, _ = formatters.DisplayFormatter().format(cr.draw(chain()))
        assert "<svg" in bundle["image/svg+xml"]
    monkeypatch.setattr(draw_module, "dot_program", lambda: None)
    bundle, _ = formatters.DisplayFormatter().format(cr.draw(chain()))
    assert "image/svg+xml" not in bundle
    assert "apt-get install graphviz" in bundle["text/plain"]
