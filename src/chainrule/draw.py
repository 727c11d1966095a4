"""Circuit diagrams in the style of the notes' figures, as Graphviz DOT (SVG/PNG via ``dot``).

``cr.draw(output)`` lays out the circuit read from :func:`chainrule.trace`: inputs as their names,
gates as circles labelled with the gate's own symbol (``+``, ``*``, ``max``, ``exp``, ``1/x``,
``+1``, ``*-1``, ``σ``, ``@``...), and on every wire its forward value in green above the line
and its gradient in red below it. A wire is drawn as a small label node that the line runs
through. A value used more than once is a fork, drawn as the copy gate it is: a small dot after
the wire's label (the trunk, carrying the total gradient), then one branch per use, each with the
gradient that use sent back; backward adds the branches' gradients on the trunk. Tensors show
their shape and dtype, and their values when small. Numbers have significant digits, as in
:func:`chainrule.explain`.

A sub-circuit can be drawn as one gate (``collapse``), such as the primitive-gate sigmoid as one
σ. A circuit of more than ``max_gates`` gates is drawn collapsed into its fan-out-free groups
(every gate whose output feeds one other gate is drawn inside that gate's group), with a note
saying so; Graphviz runs under a time limit and a slow layout is a clean :class:`GraphvizTimeout`.

Stable ids (DOT node names, also the ``id`` of each element in the SVG), for tools that read the
drawing (the explorer): ``g<i>`` is what makes wire ``i`` (its gate's circle, or a leaf's name),
``w<i>`` the label on wire ``i`` (value and total gradient), ``f<i>`` the copy gate where wire
``i`` forks and ``b<i>_<k>`` its ``k``-th branch (that use's gradient), ``result`` the output's
name; an edge's id is ``e_<tail>_<head>``. ``i`` is the wire's ``index`` in :func:`trace` order,
and a collapsed group has the index of its output wire. Every element also has a ``class``
(``gate``, ``leaf``, ``constant``, ``group``, ``wire``, ``copy``, ``branch``, ``result``).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Node
from .explain import DIGITS, check_digits, format_value, shape_text
from .i18n import N_, _
from .ops import arithmetic as ar
from .ops import elementwise as el
from .trace import Circuit, Wire, trace

__all__ = [
    "DOT_TIMEOUT",
    "MAX_GATES",
    "Diagram",
    "GraphvizMissing",
    "GraphvizTimeout",
    "Group",
    "draw",
    "dot_program",
]

GREEN = "#138a36"
RED = "#c81e1e"
INK = "#333333"
GREY = "#777777"
SMALL = 6  # tensors with at most this many elements show their values
MAX_GATES = 150
"""Above this many gates, ``draw`` collapses the circuit into fan-out-free groups."""
MAX_SPAN = 1000
"""Above this total length of wires (in layout ranks, summed over every use of every value),
``draw`` collapses the circuit too: each rank a wire crosses is a node Graphviz must place, and a
value used by a hundred gates along a chain (``x + x + ... + x``) makes ten thousand of them."""
DOT_TIMEOUT = 30.0
"""Seconds Graphviz may take to lay out a diagram before :class:`GraphvizTimeout`."""
_BITMAPS = {"png", "jpg", "jpeg", "gif", "bmp"}
INSTALL = N_(
    "install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
    "conda install graphviz, or https://graphviz.org/download/"
)


class GraphvizMissing(RuntimeError):
    """Graphviz's ``dot`` program is needed to render SVG/PNG but is not installed."""


class GraphvizTimeout(RuntimeError):
    """Graphviz took longer than its time limit to lay out a diagram."""


def dot_program() -> str | None:
    """The path of Graphviz's ``dot`` program, or None when it is not installed."""
    return shutil.which("dot")


@dataclass(frozen=True)
class Group:
    """A sub-circuit drawn as one gate: every gate between ``inputs`` and ``output``."""

    output: Node
    inputs: tuple
    label: str


class Diagram:
    """A rendered circuit: ``.dot`` (DOT text, always), ``.svg()``, ``.png()`` and ``.save()``
    through Graphviz's ``dot`` when present, and ``_repr_svg_`` for Jupyter. ``note`` says when
    the circuit was drawn collapsed because it was too large (None otherwise)."""

    def __init__(self, dot: str, note: str | None = None) -> None:
        self.dot = dot
        self.note = note

    def render(self, fmt: str, timeout: float = DOT_TIMEOUT) -> bytes:
        """The diagram in Graphviz output format ``fmt`` (``svg``, ``png``, ``pdf``...); bitmaps
        at 144 dpi so that the small numbers stay legible. Graphviz gets ``timeout`` seconds."""
        program = dot_program()
        if program is None:
            raise GraphvizMissing(
                _(
                    "cannot render {format}: Graphviz's 'dot' program is not installed "
                    "({install}); the DOT text is in .dot and save('file.dot') writes it"
                ).format(format=fmt.upper(), install=_(INSTALL))
            )
        command = [program, f"-T{fmt}", *(["-Gdpi=144"] if fmt in _BITMAPS else [])]
        try:
            result = subprocess.run(
                command,
                input=self.dot.encode("utf-8"),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GraphvizTimeout(
                _(
                    "Graphviz's dot did not finish laying out this circuit ({size}) within "
                    "{seconds} s; draw it collapsed (collapse='groups', or a smaller max_gates) "
                    "or save the DOT text"
                ).format(size=self._size(), seconds=f"{timeout:g}")
            ) from None
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"dot -T{fmt} failed: {message[0] if message else 'no output'}")
        return result.stdout

    def svg(self) -> str:
        """The diagram as SVG text."""
        return self.render("svg").decode("utf-8")

    def png(self) -> bytes:
        """The diagram as PNG bytes."""
        return self.render("png")

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the diagram in format ``fmt``, by default the file's suffix: ``dot``/``gv`` is
        the DOT text, anything else is rendered by Graphviz (``svg``, ``png``, ``pdf``)."""
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".") or "dot").lower()
        if fmt in ("dot", "gv"):
            path.write_text(self.dot, encoding="utf-8")
        else:
            path.write_bytes(self.render(fmt))
        return path

    def _repr_svg_(self) -> str | None:
        if dot_program() is None:
            return None
        try:
            return self.svg()
        except (GraphvizTimeout, RuntimeError):
            return None

    def _size(self) -> str:
        return f"{self.dot.count(' -> ')} edges"

    def __str__(self) -> str:
        return self.dot

    def __repr__(self) -> str:
        note = f"; {self.note}" if self.note else ""
        if dot_program() is None:
            note += "; " + _(
                "Graphviz's 'dot' program is not installed, so it cannot be shown as a "
                "picture: {install}; .dot holds the DOT text"
            ).format(install=_(INSTALL))
        return f"Diagram({self._size()}{note})"


def draw(
    output: Node,
    values: bool = True,
    grads: bool = True,
    rankdir: str = "LR",
    collapse: str | Iterable[Group | tuple] | None = None,
    digits: int = DIGITS,
    grad: Any = None,
    max_gates: int | None = MAX_GATES,
) -> Diagram:
    """The circuit of ``output`` as a diagram: forward values (green) and gradients (red) on its
    wires, numbers with ``digits`` significant digits. ``rankdir`` is Graphviz's direction
    (``LR``, ``TB``). ``collapse`` draws sub-circuits as single gates: ``"sigmoid"`` finds the
    notes' primitive sigmoid (``*-1``, ``exp``, ``+1``, ``1/x``) and draws it as one σ gate,
    ``"groups"`` draws each fan-out-free group of gates as one; or give groups as :class:`Group`
    or ``(output, inputs, label)`` tuples. A circuit with more than ``max_gates`` gates is drawn
    with ``collapse="groups"`` and a note, and so is one whose wires would be too long to lay
    out quickly (``max_gates=None`` turns this off). ``grad`` is the upstream gradient on the
    output, as for ``backward()`` (without it a many-element output shows values only).

    Works the same before and after ``backward()``: the gradients are those of one backward
    sweep from ``output`` (released caches are recomputed, see :mod:`chainrule.trace`).
    """
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw(): rankdir must be LR, RL, TB or BT, got {rankdir!r}")
    digits = check_digits(digits)
    circuit = trace(output)
    note = None
    if collapse is None and max_gates is not None:
        reason = _too_large(circuit, max_gates)
        if reason:
            collapse = "groups"
            note = _(
                "drawn collapsed, {reason}: each group of gates whose values feed only one "
                "other gate is one gate here (max_gates=None draws every gate)"
            ).format(reason=reason)
    groups = _groups(circuit, collapse)
    steps = _steps(circuit, grad) if grads else []
    out = circuit.output_node
    if grads and grad is None and out.requires_grad and np.size(out.data) != 1:
        missing = _(
            "no gradients: the output has {count} elements, so pass grad= (its upstream "
            "gradient, as for backward())"
        ).format(count=np.size(out.data))
        note = missing if note is None else f"{note}; {missing}"
    dot = _Drawing(circuit, steps, groups, values, grads, rankdir, digits, note).dot()
    return Diagram(dot, note)


def _too_large(circuit: Circuit, max_gates: int) -> str | None:
    """Why the circuit is too large to draw gate by gate, or None: more than ``max_gates``
    gates, or wires longer than :data:`MAX_SPAN` ranks in all (each gate is two ranks on from
    its deepest input: its circle and its wire's label)."""
    gates = circuit.gates
    if len(gates) > max_gates:
        return _("{count} gates are more than max_gates={limit}").format(
            count=len(gates), limit=max_gates
        )
    depth: dict[Node, int] = {}
    span = 0
    for wire in circuit:
        inputs = wire.node.inputs
        depth[wire.node] = 2 + max((depth[i] for i in inputs), default=-2)
        span += sum(depth[wire.node] - depth[i] - 2 for i in inputs)
    if span > MAX_SPAN:
        return _("its values are used far apart ({span} ranks of wire, more than {limit})").format(
            span=span, limit=MAX_SPAN
        )
    return None


def _steps(circuit: Circuit, seed: Any) -> list:
    """The backward steps, or none when the output has many elements and no ``seed``."""
    out = circuit.output_node
    if seed is None and out.requires_grad and np.size(out.data) != 1:
        return []
    return circuit.backward_steps(seed)


# --- collapsing sub-circuits ------------------------------------------------------------------
@dataclass(frozen=True)
class _Collapsed:
    output: Wire
    inputs: tuple
    label: str
    hidden: frozenset


def _groups(circuit: Circuit, collapse: Any) -> list[_Collapsed]:
    if collapse is None:
        return []
    if isinstance(collapse, str):
        if collapse == "groups":
            return _fanout_free_groups(circuit)
        if collapse != "sigmoid":
            raise ValueError(
                f"draw(): collapse={collapse!r} is not known (use 'sigmoid', 'groups' or groups)"
            )
        groups = _primitive_sigmoids(circuit)
    else:
        groups = [g if isinstance(g, Group) else Group(*g) for g in collapse]
    result = []
    for group in groups:
        inputs = (group.inputs,) if isinstance(group.inputs, Node) else tuple(group.inputs)
        result.append(_collapsed(circuit, group.output, inputs, group.label))
    taken: set = set()
    for c in result:
        if taken & (c.hidden | {c.output.node}):
            raise ValueError(f"draw(): collapsed groups overlap at '{c.output.name}'")
        taken |= c.hidden | {c.output.node}
    return result


def _collapsed(circuit: Circuit, output: Node, inputs: tuple, label: str) -> _Collapsed:
    """Check a group (its interior feeds only itself and reaches only its inputs or constants)."""
    try:
        out = circuit.wire(output)
        ins = tuple(circuit.wire(i) for i in inputs)
    except KeyError:
        raise ValueError(
            "draw(): a collapsed group's output and inputs must be in the circuit"
        ) from None
    if out.is_leaf:
        raise ValueError(f"draw(): cannot collapse '{out.name}', it is not a gate's output")
    stop = {w.node for w in ins}
    hidden: set = set()
    stack = [output]
    while stack:
        node = stack.pop()
        for inp in node.inputs:
            if inp in stop or inp in hidden:
                continue
            wire = circuit.wire(inp)
            if wire.is_leaf and not wire.is_constant:
                raise ValueError(
                    f"draw(): the group ending at '{out.name}' reaches input '{wire.name}', which "
                    "is not among its inputs"
                )
            hidden.add(inp)
            stack.append(inp)
    for wire in circuit:
        if wire.node in hidden or wire.node is output:
            continue
        for inp in circuit.inputs_of(wire):
            if inp.node in hidden:
                raise ValueError(
                    f"draw(): '{inp.name}' inside the group ending at '{out.name}' is also used "
                    f"by '{wire.name}' outside it"
                )
    return _Collapsed(out, ins, label, frozenset(hidden))


def _consumers(circuit: Circuit) -> dict[Node, set]:
    """For every value, the set of gate outputs that use it."""
    users: dict[Node, set] = {}
    for wire in circuit.gates:
        for inp in wire.node.inputs:
            users.setdefault(inp, set()).add(wire.node)
    return users


def _fanout_free_groups(circuit: Circuit) -> list[_Collapsed]:
    """Each gate whose value feeds exactly one other gate joins that gate's group (a
    fan-out-free region); a group of more than one gate is drawn as one, labelled with its
    output gate's symbol and its number of gates. Constants used only inside join it too."""
    users = _consumers(circuit)
    owner: dict[Node, Node] = {}  # member -> the output node of its group
    for wire in reversed(circuit.wires):  # consumers first
        node = wire.node
        used_by = users.get(node, set())
        if (
            node is circuit.output_node
            or len(used_by) != 1
            or wire.is_leaf
            and not wire.is_constant
        ):
            owner[node] = node
            continue
        (user,) = used_by
        owner[node] = owner.get(user, user)
    members: dict[Node, list[Node]] = {}
    for node, root in owner.items():
        if node is not root:
            members.setdefault(root, []).append(node)
    result = []
    for root, inside in members.items():
        gates = [n for n in inside if n._gate is not None]
        if not gates:
            continue
        hidden = frozenset(inside)
        feeds = []
        for node in [root, *inside]:
            for inp in node.inputs:
                if inp not in hidden and inp not in feeds:
                    feeds.append(inp)
        wire = circuit.wire(root)
        label = f"{wire.label} ({len(gates) + 1})"
        result.append(_Collapsed(wire, tuple(circuit.wire(n) for n in feeds), label, hidden))
    return result


def _primitive_sigmoids(circuit: Circuit) -> list[Group]:
    """The chains 1/x <- +1 <- exp <- *-1 (the notes' sigmoid from primitive gates)."""
    consumers: dict[Node, int] = {}
    for wire in circuit.gates:
        for inp in wire.node.inputs:
            consumers[inp] = consumers.get(inp, 0) + 1
    found = []
    for wire in circuit.gates:
        node = wire.node
        chain = [node]
        expected = (ar.Reciprocal, ar.Translate, el.Exp)
        for gate in expected:
            if chain[-1].gate is not gate:
                break
            if gate is ar.Translate and chain[-1].options.get("c") != 1:
                break
            chain.append(chain[-1].inputs[0])
        else:
            neg = chain[-1]
            is_neg = neg.gate is ar.Neg or (neg.gate is ar.Scale and neg.options.get("c") == -1)
            interior = chain[1:]
            if is_neg and all(consumers.get(n, 0) == 1 for n in interior):
                found.append(Group(node, (neg.inputs[0],), el.Sigmoid.symbol))
    return found


# --- DOT text ---------------------------------------------------------------------------------
class _Drawing:
    """The DOT text of one diagram: nodes and edges with stable ids (see the module doc)."""

    def __init__(
        self,
        circuit: Circuit,
        steps: list,
        groups: list,
        values: bool,
        grads: bool,
        rankdir: str,
        digits: int,
        note: str | None,
    ) -> None:
        self.circuit = circuit
        self.values, self.grads, self.digits, self.note = values, grads, digits, note
        self.rankdir = rankdir
        self.horizontal = rankdir in ("LR", "RL")
        self.enter, self.leave = {
            "LR": ("w", "e"),
            "RL": ("e", "w"),
            "TB": ("n", "s"),
            "BT": ("s", "n"),
        }[rankdir]
        self.hidden = set().union(*(g.hidden for g in groups)) if groups else set()
        self.by_output = {g.output.node: g for g in groups}
        # the drawn node each gate output belongs to (itself, or the group it is hidden in)
        self.drawn_as: dict[Node, Node] = {}
        for g in groups:
            for node in g.hidden:
                self.drawn_as[node] = g.output.node
        self.total: dict[Node, Any] = {}
        self.branch: dict[tuple[Node, Node, int], Any] = {}
        if steps:
            self.total[steps[0].wire.node] = steps[0].upstream
        for step in steps:
            for slot, (wire, g) in enumerate(zip(step.inputs, step.input_grads)):
                if g is None or wire.is_constant:
                    continue
                node = wire.node
                self.total[node] = g if node not in self.total else self.total[node] + g
                self.branch[(node, step.wire.node, slot)] = g

    def branch_grad(self, node: Node, pairs: list) -> Any:
        grads = [self.branch.get((node, consumer, slot)) for consumer, slot in pairs]
        grads = [g for g in grads if g is not None]
        if not grads:
            return None
        total = grads[0]
        for g in grads[1:]:
            total = total + g
        return total

    def _uses(self) -> dict[Node, list[tuple[Node, list]]]:
        """Where each value goes in the drawing: one (drawn gate, [(gate, slot)...]) per branch.
        A gate gets one branch per input slot (``x * x`` uses x twice), a collapsed group one
        branch per value entering it, for all its uses inside."""
        uses: dict[Node, list[tuple[Node, list]]] = {}
        for wire in self.circuit.gates:
            node = wire.node
            if node in self.hidden:
                continue
            group = self.by_output.get(node)
            if group is None:
                for slot, inp in enumerate(node.inputs):
                    uses.setdefault(inp, []).append((node, [(node, slot)]))
                continue
            entering: dict[Node, list] = {}
            for member in (node, *group.hidden):
                for slot, inp in enumerate(member.inputs):
                    if inp not in group.hidden:
                        entering.setdefault(inp, []).append((member, slot))
            for inp, pairs in entering.items():
                uses.setdefault(inp, []).append((node, pairs))
        return uses

    def dot(self) -> str:
        circuit = self.circuit
        self.uses = self._uses()
        lines = [
            "digraph circuit {",
            f"  rankdir={self.rankdir}; nodesep=0.25; ranksep=0.2; bgcolor=white; ordering=in;",
            '  node [fontname="Helvetica", fontsize=12, color="#333333"];',
            f'  edge [color="{INK}", arrowsize=0.5, penwidth=1.0];',
        ]
        if self.note:
            lines.append(
                f'  label="note: {_dot_escape(self.note)}"; labelloc=t; labeljust=l; '
                f'fontname="Helvetica"; fontsize=11; fontcolor="{GREY}";'
            )
        for wire in circuit:
            if wire.node in self.hidden:
                continue
            lines.extend(self._source(wire))
            lines.extend(self._wire(wire))
        out = circuit.output
        lines.append(
            f'  result [id="result", class="result", shape=plaintext, '
            f'label="{_dot_escape(out.name)}", fontsize=13];'
        )
        lines.append(_edge(f"w{out.index}", self.leave, "result", None))
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _source(self, wire: Wire) -> list[str]:
        """The node that makes ``wire``: a leaf's name (a constant's value) or a gate circle."""
        i = wire.index
        if wire.is_leaf:
            named = not wire.is_constant or wire.named
            text = wire.name if named else format_value(wire.data, self.digits)
            kind = "constant" if wire.is_constant else "leaf"
            return [
                f'  g{i} [id="g{i}", class="{kind}", shape=plaintext, '
                f'label="{_dot_escape(text)}", fontsize=13, margin=0.02];'
            ]
        group = self.by_output.get(wire.node)
        label = group.label if group else wire.label
        if group:
            kinds = sorted({n._gate.name for n in group.hidden if n._gate is not None})
            tooltip = f"{label}: {wire.name} = {wire.gate.name} of {', '.join(kinds)}"
        else:
            tooltip = f"{wire.gate.name}: {wire.name}"
        lines = [
            f'  g{i} [id="g{i}", class="{"group" if group else "gate"}", shape=circle, '
            f'label="{_dot_escape(label)}", width=0.45, margin=0.03, style=filled, '
            f'fillcolor="#f2f2f2", fontsize={_gate_size(label)}, '
            f'tooltip="{_dot_escape(tooltip)}"];'
        ]
        return lines

    def _wire(self, wire: Wire) -> list[str]:
        """The wire's label, the edge into it, and its way to each use (through a copy gate and
        one labelled branch per use where it forks)."""
        i, node = wire.index, wire.node
        grad = None if wire.is_constant else self.total.get(node)
        named = not wire.is_leaf and wire.named and wire is not self.circuit.output
        label = _wire_label(
            wire.data,
            grad,
            self.values,
            self.horizontal,
            self.digits,
            wire.name if named else None,
        )
        lines = [
            f'  w{i} [id="w{i}", class="wire", shape=plaintext, margin=0, width=0, height=0, '
            f"label=<{label}>];",
            _edge(f"g{i}", self.leave if wire.is_leaf else None, f"w{i}", self.enter, True),
        ]
        uses = self.uses.get(node, [])
        if len(uses) == 1:
            target, _ = uses[0]
            lines.append(_edge(f"w{i}", self.leave, f"g{self.circuit.wire(target).index}", None))
        elif uses:
            lines.append(
                f'  f{i} [id="f{i}", class="copy", shape=circle, label="", width=0.09, '
                f'height=0.09, fixedsize=true, style=filled, fillcolor="{INK}", '
                f'tooltip="copy: {_dot_escape(wire.name)} is used {len(uses)} times; backward '
                "adds the branches' gradients\"];"
            )
            lines.append(_edge(f"w{i}", self.leave, f"f{i}", None, True))
            for k, (target, pairs) in enumerate(uses):
                bid = f"b{i}_{k}"
                g = None if wire.is_constant else self.branch_grad(node, pairs)
                text = _wire_label(None, g, False, self.horizontal, self.digits, None)
                lines.append(
                    f'  {bid} [id="{bid}", class="branch", shape=plaintext, margin=0, width=0, '
                    f"height=0, label=<{text}>];"
                )
                lines.append(_edge(f"f{i}", None, bid, self.enter, True))
                head = f"g{self.circuit.wire(target).index}"
                lines.append(_edge(bid, self.leave, head, None))
        return lines


def _edge(tail: str, tail_port: str | None, head: str, head_port: str | None, plain=False) -> str:
    """An edge with id ``e_<tail>_<head>`` (``plain``: no arrowhead, the line runs on)."""
    t = f"{tail}:{tail_port}" if tail_port else tail
    h = f"{head}:{head_port}" if head_port else head
    arrow = ", arrowhead=none" if plain else ""
    return f'  {t} -> {h} [id="e_{tail}_{head}"{arrow}];'


def _gate_size(label: str) -> int:
    return 14 if len(label) <= 2 else 12 if len(label) <= 4 else 10


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _wire_lines(data: Any, digits: int, with_shape: bool = True) -> list[str]:
    """The text on a wire: a number, or a tensor's shape and dtype and its values when small
    (a gradient, ``with_shape=False``, shows its shape only when too large to show values)."""
    array = np.asarray(data)
    if array.ndim == 0:
        return [format_value(data, digits)]
    head = f"{shape_text(array.shape)} {array.dtype}"
    if array.size > SMALL:
        return [head]
    rows = array.reshape(1, -1) if array.ndim < 2 else array.reshape(-1, array.shape[-1])
    values = [" ".join(format_value(float(v), digits) for v in row) for row in rows]
    return [head, *values] if with_shape else values


def _wire_label(
    data: Any, grad: Any, values: bool, horizontal: bool, digits: int, name: str | None
) -> str:
    """An HTML-like label: value rows (green, after the wire's name in grey when the user named
    an intermediate value), a line the wire runs through, gradient rows (red).

    Both halves get the same number of rows so the line sits in the middle, where the edges meet
    the label node. In a top-to-bottom layout the line is vertical and the halves side by side.
    """
    top = _wire_lines(data, digits) if values else []
    bottom = _wire_lines(grad, digits, with_shape=False) if grad is not None else []
    n = max(len(top), len(bottom), 1)
    top += [" "] * (n - len(top))
    bottom += [" "] * (n - len(bottom))
    value_cell = _cell(top, GREEN, name)
    grad_cell = _cell(bottom, RED)
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
    if horizontal:
        line = f'<TR><TD HEIGHT="1" BGCOLOR="{INK}"></TD></TR>'
        return f"{table}<TR>{value_cell}</TR>{line}<TR>{grad_cell}</TR></TABLE>"
    line = f'<TD WIDTH="1" BGCOLOR="{INK}"></TD>'
    return f"{table}<TR>{value_cell}{line}{grad_cell}</TR></TABLE>"


def _cell(lines: Sequence[str], color: str, name: str | None = None) -> str:
    text = "<BR/>".join(html.escape(s) if s.strip() else "&#160;" for s in lines)
    paint = f' COLOR="{color}"' if any(s.strip() for s in lines) else ""
    named = f'<FONT COLOR="{GREY}" POINT-SIZE="10">{html.escape(name)} </FONT>' if name else ""
    return f'<TD CELLPADDING="2">{named}<FONT{paint} POINT-SIZE="11">{text}</FONT></TD>'
