"""Circuit diagrams in the style of the notes' figures, as Graphviz DOT (SVG/PNG via ``dot``).

``cr.draw(output)`` lays out the circuit read from :func:`chainrule.trace`: inputs as their names,
gates as circles labelled with the gate's own symbol (``+``, ``*``, ``max``, ``exp``, ``1/x``,
``+1``, ``*-1``, ``σ``, ``@``...), and on every wire its forward value in green above the line
and its gradient in red below it. A wire is drawn as a small label node that the line runs
through, so a value that fans out shows one total gradient before it forks. Tensors show their
shape and dtype, and their values when small. A sub-circuit can be drawn as one gate
(``collapse``), such as the primitive-gate sigmoid as one σ.
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
from .explain import format_value, shape_text
from .ops import arithmetic as ar
from .ops import elementwise as el
from .trace import Circuit, Wire, trace

__all__ = ["Diagram", "GraphvizMissing", "Group", "draw", "dot_program"]

GREEN = "#138a36"
RED = "#c81e1e"
INK = "#333333"
GREY = "#777777"
SMALL = 6  # tensors with at most this many elements show their values
_BITMAPS = {"png", "jpg", "jpeg", "gif", "bmp"}


class GraphvizMissing(RuntimeError):
    """Graphviz's ``dot`` program is needed to render SVG/PNG but is not installed."""


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
    through Graphviz's ``dot`` when present, and ``_repr_svg_`` for Jupyter."""

    def __init__(self, dot: str) -> None:
        self.dot = dot

    def render(self, fmt: str) -> bytes:
        """The diagram in Graphviz output format ``fmt`` (``svg``, ``png``, ``pdf``...); bitmaps
        at 144 dpi so that the small numbers stay legible."""
        program = dot_program()
        if program is None:
            raise GraphvizMissing(
                f"cannot render {fmt.upper()}: Graphviz's 'dot' program is not installed "
                "(apt-get install graphviz, or brew install graphviz); the DOT text is in "
                ".dot and save('file.dot') writes it"
            )
        command = [program, f"-T{fmt}", *(["-Gdpi=144"] if fmt in _BITMAPS else [])]
        result = subprocess.run(
            command, input=self.dot.encode("utf-8"), capture_output=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"dot -T{fmt} failed: {result.stderr.decode(errors='replace')}")
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
        return self.svg() if dot_program() is not None else None

    def __str__(self) -> str:
        return self.dot

    def __repr__(self) -> str:
        return f"Diagram({self.dot.count(' -> ')} edges)"


def draw(
    output: Node,
    values: bool = True,
    grads: bool = True,
    rankdir: str = "LR",
    collapse: str | Iterable[Group | tuple] | None = None,
    digits: int = 2,
    grad: Any = None,
) -> Diagram:
    """The circuit of ``output`` as a diagram: forward values (green) and gradients (red) on its
    wires, numbers with ``digits`` decimals. ``rankdir`` is Graphviz's direction (``LR``, ``TB``).
    ``collapse`` draws sub-circuits as single gates: ``"sigmoid"`` finds the notes' primitive
    sigmoid (``*-1``, ``exp``, ``+1``, ``1/x``) and draws it as one σ gate; or give groups as
    :class:`Group` or ``(output, inputs, label)`` tuples. ``grad`` is the upstream gradient on
    the output, as for ``backward()`` (without it a many-element output shows values only).
    """
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw(): rankdir must be LR, RL, TB or BT, got {rankdir!r}")
    circuit = trace(output)
    gradients = _gradients(circuit, grad) if grads else {}
    groups = _groups(circuit, collapse)
    return Diagram(_dot(circuit, gradients, groups, values, rankdir, digits))


def _gradients(circuit: Circuit, seed: Any) -> dict[str, Any]:
    """Every wire's gradient; once backward has released the cache, what ``.grad`` kept."""
    try:
        return circuit.gradients(seed)
    except RuntimeError:
        return {w.name: w.grad for w in circuit if w.grad is not None and not w.is_constant}


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
        if collapse != "sigmoid":
            raise ValueError(
                f"draw(): collapse={collapse!r} is not known (use 'sigmoid' or groups)"
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
def _dot(
    circuit: Circuit, gradients: dict, groups: list, values: bool, rankdir: str, digits: int
) -> str:
    hidden = set().union(*(g.hidden for g in groups)) if groups else set()
    by_output = {g.output.node: g for g in groups}
    lines = [
        "digraph circuit {",
        f"  rankdir={rankdir}; nodesep=0.25; ranksep=0.2; bgcolor=white; ordering=in;",
        '  node [fontname="Helvetica", fontsize=12, color="#333333"];',
        f'  edge [color="{INK}", arrowsize=0.5, penwidth=1.0];',
    ]
    horizontal = rankdir in ("LR", "RL")
    enter, leave = (
        ("w", "e")
        if rankdir == "LR"
        else ("e", "w")
        if rankdir == "RL"
        else (("n", "s") if rankdir == "TB" else ("s", "n"))
    )
    for wire in circuit:
        if wire.node in hidden:
            continue
        i = wire.index
        group = by_output.get(wire.node)
        if wire.is_leaf:
            text = wire.name if not wire.is_constant else format_value(wire.data, digits)
            lines.append(
                f'  n{i} [shape=plaintext, label="{_dot_escape(text)}", fontsize=13, margin=0.02];'
            )
        else:
            label = group.label if group else wire.label
            tooltip = f"{wire.gate.name}: {wire.name}" if not group else f"{label}: {wire.name}"
            lines.append(
                f'  n{i} [shape=circle, label="{_dot_escape(label)}", width=0.45, '
                f'margin=0.03, style=filled, fillcolor="#f2f2f2", fontsize={_gate_size(label)}, '
                f'tooltip="{_dot_escape(tooltip)}"];'
            )
            feeds = group.inputs if group else circuit.inputs_of(wire)
            for src in feeds:
                lines.append(f"  w{src.index}:{leave} -> n{i};")
        grad = None if wire.is_constant else gradients.get(wire.name)
        named = not wire.is_leaf and wire.node.name and wire is not circuit.output
        name = wire.name if named else None
        lines.append(
            f"  w{i} [shape=plaintext, margin=0, width=0, height=0, "
            f"label=<{_wire_label(wire.data, grad, values, horizontal, digits, name)}>];"
        )
        lines.append(f"  n{i} -> w{i}:{enter} [arrowhead=none];")
    out = circuit.output
    lines.append(f'  result [shape=plaintext, label="{_dot_escape(out.name)}", fontsize=13];')
    lines.append(f"  w{out.index}:{leave} -> result;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _gate_size(label: str) -> int:
    return 14 if len(label) <= 2 else 12 if len(label) <= 4 else 10


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _wire_lines(data: Any, digits: int, with_shape: bool = True) -> list[str]:
    """The text on a wire: a number, or a tensor's shape and dtype and its values when small
    (a gradient, ``with_shape=False``, shows its shape only when too large to show values)."""
    array = np.asarray(data)
    if array.ndim == 0 and not hasattr(data, "dtype"):
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
