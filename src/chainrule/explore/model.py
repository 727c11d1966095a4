"""The explorer's data: one recorded circuit read into plain JSON for the page.

Everything here is a reading of the record through the existing readers: the wires and gates
from :func:`chainrule.trace`, the backward steps (local, upstream, product, forks) from
:func:`chainrule.explain`, the picture from :func:`chainrule.draw` (Graphviz SVG, whose nodes
carry the DOT names of gates and wires), and the staged code from :func:`chainrule.stage`. The
page only shows these numbers; no derivative is ever computed in JavaScript.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..draw import Group, draw
from ..engine import Node
from ..explain import DIGITS, explain, format_value, formula
from ..trace import Circuit, Wire

__all__ = ["HEAT", "ModuleGroup", "describe", "dot_ids", "number"]

HEAT = 48
"""Tensors show a heatmap of at most HEAT x HEAT cells (the top-left corner of larger ones)."""


class ModuleGroup:
    """The gates one module call made: drawn as one box, expandable to its gates."""

    def __init__(self, name: str, label: str, output: Node, inputs: tuple, nodes: set) -> None:
        self.name = name
        self.label = label
        self.output = output
        self.inputs = inputs
        self.nodes = nodes


def dot_ids(wire: Wire) -> tuple[str, str]:
    """The stable ids :func:`chainrule.draw` gives a wire: what makes it (its gate's circle or
    a leaf's name) and the label its line runs through (``g<i>``, ``w<i>``: the DOT node names,
    kept as the SVG elements' ids and ``<title>``s). Its copy gate and branches at a fork are
    ``f<i>`` and ``b<i>_<k>``."""
    return f"g{wire.index}", f"w{wire.index}"


def number(value: Any, digits: int) -> dict:
    """A value for the page: its text as the diagrams write it, its number (None for tensors and
    non-finite numbers, which JSON cannot hold) and, for a tensor, its shape and a heatmap."""
    if isinstance(value, Node):
        value = value.data
    if value is None:
        return {"text": "-", "num": None}
    array = np.asarray(value)
    if array.ndim == 0 and not hasattr(value, "shape"):
        x = float(array.real) if np.iscomplexobj(array) else float(array)
        return {"text": format_value(value, digits), "num": x if math.isfinite(x) else None}
    out: dict[str, Any] = {"text": format_value(value, digits), "num": None}
    out["shape"] = list(array.shape)
    out["dtype"] = str(array.dtype)
    if array.size == 1:
        x = float(array.reshape(()).real)
        out["num"] = x if math.isfinite(x) else None
    grid = array.real.astype(float).reshape(1, -1) if array.ndim < 2 else array.real
    grid = grid.reshape(-1, grid.shape[-1]) if grid.ndim > 2 else grid
    rows, cols = grid.shape
    shown = np.asarray(grid[:HEAT, :HEAT], dtype=float)
    finite = shown[np.isfinite(shown)]
    out["heat"] = {
        "rows": int(shown.shape[0]),
        "cols": int(shown.shape[1]),
        "total": [int(rows), int(cols)],
        "data": [round(float(v), 6) if math.isfinite(v) else None for v in shown.ravel()],
        "lo": float(finite.min()) if finite.size else 0.0,
        "hi": float(finite.max()) if finite.size else 0.0,
    }
    return out


def describe(
    output: Node,
    *,
    title: str = "",
    digits: int = DIGITS,
    inputs: Sequence[dict] = (),
    code: tuple[list[str], dict[str, list[int]], str] | None = None,
    modules: Sequence[ModuleGroup] = (),
) -> dict:
    """The page's data for the circuit of ``output``: the SVG (and, with ``modules``, one view
    with every module collapsed plus one per expanded module), every wire's value, gradient and
    branches, the backward steps, the inputs' form fields and the staged code."""
    explanation = explain(output, digits=digits)
    circuit = explanation.circuit
    by_name = {w.name: w for w in circuit}
    steps, branches, reveal = _steps(explanation, circuit, by_name, digits)
    grads = _gradients(circuit, explanation)
    module_of = _module_of(circuit, modules)
    wires = []
    for wire in circuit:
        gate_dot, label_dot = dot_ids(wire)
        args = [i.name for i in circuit.inputs_of(wire)]
        wires.append(
            {
                "id": wire.index,
                "name": wire.name,
                "dot": label_dot,
                "node": gate_dot,
                "leaf": wire.is_leaf,
                "constant": wire.is_constant,
                "label": wire.label,
                "formula": "" if wire.is_leaf else formula(wire, args),
                "inputs": [i.index for i in circuit.inputs_of(wire)],
                "value": number(wire.data, digits),
                "grad": None if wire.is_constant else number(grads.get(wire.name), digits),
                "reveal": reveal.get(wire.name, 0),
                "branches": branches.get(wire.name, []),
                "module": module_of.get(wire.node),
            }
        )
    code_lines, gate_lines, code_note = code if code is not None else ([], {}, "")
    for step in steps:
        step["code"] = gate_lines.get(circuit.wires[step["wire"]].name, [])
    views, note = {}, ""
    views["all"], note = _svg(output, digits, [])
    module_list = []
    if modules:
        views["collapsed"] = _svg(output, digits, modules)[0]
        for group in modules:
            others = [g for g in modules if g is not group]
            views[group.name] = _svg(output, digits, others)[0]
            module_list.append(
                {
                    "name": group.name,
                    "label": group.label,
                    "node": dot_ids(circuit.wire(group.output))[0],
                    "wires": sorted(circuit.wire(n).index for n in group.nodes),
                }
            )
    return {
        "title": title,
        "digits": digits,
        "output": circuit.output.index,
        "views": views,
        "note": note,
        "wires": wires,
        "steps": steps,
        "inputs": list(inputs),
        "gradients": [
            {"name": name, "grad": number(g, digits)} for name, g in explanation.gradients.items()
        ],
        "modules": module_list,
        "code": {"lines": code_lines, "note": code_note},
    }


def _gradients(circuit: Circuit, explanation: Any) -> dict[str, Any]:
    """Every wire's total gradient: the seed on the output, then each row's totals."""
    grads: dict[str, Any] = {}
    rows = explanation.rows
    if rows:
        grads[rows[0].output] = rows[0].upstream
    for row in rows:
        for name, total in zip(row.inputs, row.totals):
            if total is not None:
                grads[name] = total
    for name, g in explanation.gradients.items():
        grads.setdefault(name, g)
    return grads


def _steps(explanation: Any, circuit: Circuit, by_name: dict, digits: int) -> tuple:
    """One dict per backward step, each wire's branches (one per gate that sent it a gradient)
    and the step at which each wire's gradient is complete."""
    steps = []
    branches: dict[str, list] = {}
    reveal: dict[str, int] = {}
    if explanation.rows:
        reveal[explanation.rows[0].output] = 1
    for row in explanation.rows:
        wire = by_name[row.output]
        ins = []
        for k, name in enumerate(row.inputs):
            source = circuit.inputs_of(wire)[k]
            local = row.local[k] if row.local is not None else None
            grad = row.grads[k]
            ins.append(
                {
                    "wire": source.index,
                    "name": name,
                    "value": number(row.input_values[k], digits),
                    "local": None if local is None or grad is None else number(local, digits),
                    "grad": None if grad is None else number(grad, digits),
                    "total": None if row.totals[k] is None else number(row.totals[k], digits),
                    "forked": bool(row.forked[k]),
                }
            )
            if grad is not None:
                branches.setdefault(name, []).append(
                    {
                        "step": row.step,
                        "gate": row.label,
                        "to": row.output,
                        "wire": wire.index,
                        "grad": number(grad, digits),
                    }
                )
                reveal[name] = row.step
        steps.append(
            {
                "n": row.step,
                "wire": wire.index,
                "name": row.output,
                "label": row.label,
                "gate": row.gate,
                "formula": formula(wire, list(row.inputs)),
                "output": number(row.output_value, digits),
                "upstream": number(row.upstream, digits),
                "inputs": ins,
                "patterns": list(row.patterns),
                "rules": list(row.rules),
            }
        )
    return steps, branches, reveal


def _module_of(circuit: Circuit, modules: Sequence[ModuleGroup]) -> dict:
    owner: dict[Node, str] = {}
    for group in modules:
        for node in group.nodes:
            owner[node] = group.name
    return owner


def _svg(output: Node, digits: int, groups: Sequence[ModuleGroup]) -> tuple[str, str]:
    """The diagram as inline SVG text (the XML prologue and doctype dropped) and its note (why
    it is drawn collapsed, when it is too large to draw gate by gate)."""
    collapse = [Group(g.output, g.inputs, g.label) for g in groups] or None
    diagram = draw(output, digits=digits, collapse=collapse)
    svg = diagram.svg()
    start = svg.find("<svg")
    return (svg[start:] if start >= 0 else svg), diagram.note or ""


_STAGE_MARK = re.compile(r"#\s*\((\d+)\)(?:\s|$)")
_STAGING = threading.Lock()  # cr.stage marks tensors as being traced process-wide: one at a time


def staged_code(
    fn: Callable, names: Sequence[str], values: Sequence[Any], circuit: Circuit
) -> tuple[list[str], dict[str, list[int]], str]:
    """The staged source of ``fn`` at ``values`` (``cr.stage``), its lines by gate (wire name)
    and a note. Lines are matched to gates through the stage numbers ``# (k)`` the staged code
    writes after each line: stage k is the circuit's k-th gate (:attr:`Circuit.gates`, the order
    forward computes them). When the counts disagree the code is shown without the matching."""
    from ..stage import stage

    wrt = tuple(k for k, v in enumerate(values) if np.asarray(v).dtype.kind == "f")
    try:
        with _STAGING:
            staged = stage(fn, *values, wrt=wrt)
    except Exception as exc:  # any failure only hides the code panel, with its reason
        return [], {}, f"no staged code for this circuit: {_one_line(exc)}"
    lines = staged.source.rstrip("\n").splitlines()
    marks: dict[int, list[int]] = {}
    for number_, line in enumerate(lines):
        match = _STAGE_MARK.search(line)
        if match:
            marks.setdefault(int(match.group(1)), []).append(number_)
    order = circuit.gates  # stage k is the circuit's k-th gate
    if len(order) != len(marks):
        return lines, {}, "the staged code's stages could not be matched to the circuit's gates"
    gate_lines: dict[str, list[int]] = {}
    for k, wire in enumerate(order, 1):
        numbers = marks.get(k, [])
        headers = [n - 1 for n in numbers if n and lines[n - 1].strip().startswith("# backprop")]
        gate_lines.setdefault(wire.name, []).extend(numbers + headers)
    return lines, {name: sorted(ks) for name, ks in gate_lines.items()}, ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
