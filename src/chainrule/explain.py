"""The backward pass narrated step by step, as the notes walk through their circuits.

``cr.explain(output)`` reads the circuit from :func:`chainrule.trace` and returns one
:class:`Row` per gate, in the order backprop visits them: the gate, its inputs' and output's
values, its local gradient(s), the upstream gradient, the gradient it sends to each input and the
pattern it shows ("add distributes", "mul swaps", "max routes", and "fork adds" where a value that
fans out receives its second and later contributions). Everything about a gate is asked of the
gate: its symbol, its pattern, its backward rule (a scalar gate's local gradients are its backward
applied to an upstream gradient of 1, backward being linear in it) and, for tensor gates, each
input's gradient read off the gate's recorded backward, in dimension-analysis form.

It reads the circuit the same before and after ``backward()`` (released caches are recomputed,
see :mod:`chainrule.trace`). Numbers are shown with significant digits (3 by default), the same
in the text table, the Jupyter table (``_repr_html_``) and the diagrams.
"""

from __future__ import annotations

import ast
import html
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import GateError, Node
from .i18n import N_, resolve, translation
from .stage.code import Namespace
from .stage.record import Expressions, record_backward, upstream_leaf
from .stage.simplify import simplify
from .trace import Circuit, Wire, context, trace

__all__ = ["DIGITS", "Explanation", "Row", "explain", "format_value"]

FORK = N_("fork adds")
DIGITS = 3
"""Significant digits shown by default in tables and diagrams."""


@dataclass(frozen=True)
class Row:
    """One backward step: ``grads[i] = local[i] * upstream`` for scalar gates.

    ``totals[i]`` is the gradient accumulated on input ``i`` after this step (it differs from
    ``grads[i]`` where the input fans out); ``forked[i]`` says whether this step added to an
    earlier contribution. ``local`` is None for tensor gates, which give ``rules`` instead.
    """

    step: int
    gate: str
    label: str
    output: str
    inputs: tuple[str, ...]
    input_values: tuple
    output_value: Any
    local: tuple | None
    upstream: Any
    grads: tuple
    totals: tuple
    forked: tuple[bool, ...]
    patterns: tuple[str, ...]
    rules: tuple[str, ...]


class Explanation:
    """The narrated backward pass of a circuit: ``rows`` for programs, ``str()`` for people."""

    def __init__(
        self, circuit: Circuit, rows: list[Row], gradients: dict, digits: int, lang: str
    ) -> None:
        self.circuit = circuit
        self.rows = rows
        self.gradients = gradients
        self.digits = digits
        self.lang = lang

    def _(self, message: str) -> str:
        return translation(self.lang).gettext(message)

    @property
    def output(self) -> Wire:
        """The output wire."""
        return self.circuit.output

    def forward_lines(self) -> list[str]:
        """The forward pass, one wire per line: ``q = x + y = 3.00``."""
        lines = []
        for wire in self.circuit:
            value = format_value(wire.data, self.digits)
            if wire.is_leaf:
                kind = "" if not wire.is_constant else "  " + self._("(constant)")
                lines.append(f"{wire.name} = {value}{kind}")
            else:
                args = [i.name for i in self.circuit.inputs_of(wire)]
                lines.append(f"{wire.name} = {formula(wire, args)} = {value}")
        return lines

    def gradient_lines(self) -> list[str]:
        """The gradient on each input: ``dx = -4.00``."""
        return [f"d{name} = {format_value(g, self.digits)}" for name, g in self.gradients.items()]

    def table(self) -> str:
        """The rows as an aligned text table (tensor rules on indented lines below their row)."""
        if not self.rows:
            return self._("(nothing in this circuit needs a gradient)")
        d = self.digits
        header = tuple(self._(h) for h in _HEADER)
        cells = [self._cells(row, d) for row in self.rows]
        widths = [max(_width(r[k]) for r in [header, *cells]) for k in range(len(header))]
        lines = [_line(header, widths), _line(tuple("-" * w for w in widths), widths)]
        for row, cell in zip(self.rows, cells):
            lines.append(_line(cell, widths))
            lines.extend(" " * (widths[0] + 2) + rule for rule in row.rules)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        n = len(self.rows)
        return f"Explanation({n} step{'' if n == 1 else 's'}, output {self.output.name})"

    def _repr_html_(self) -> str:
        """The table for Jupyter: one row per backward step, numbers right-aligned, tensor rules
        on a line of their own, then the gradients on the inputs."""
        d = self.digits
        head = "".join(
            f"<th style='text-align:{a}'>{html.escape(self._(h))}</th>"
            for h, a in zip(_HEADER, _ALIGN)
        )
        body = []
        for row in self.rows:
            cells = self._cells(row, d)
            body.append(
                "<tr>"
                + "".join(
                    f"<td style='text-align:{a}'>{html.escape(c)}</td>"
                    for c, a in zip(cells, _ALIGN)
                )
                + "</tr>"
            )
            for rule in row.rules:
                body.append(
                    f"<tr><td></td><td colspan='{len(_HEADER) - 1}' style='text-align:left'>"
                    f"{html.escape(rule)}</td></tr>"
                )
        if not self.rows:
            body.append(f"<tr><td colspan='{len(_HEADER)}'>{html.escape(self.table())}</td></tr>")
        grads = "<br>".join(html.escape(line) for line in self.gradient_lines())
        return (
            "<div class='chainrule-explanation'>"
            f"<table style='font-family:monospace'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
            f"<p style='font-family:monospace'>{grads}</p></div>"
        )

    def _cells(self, row: Row, d: int) -> tuple[str, ...]:
        """A row's text, one string per column of ``_HEADER`` (pattern names translated)."""
        return (
            str(row.step),
            row.label,
            "  ".join(f"{n}={format_value(v, d)}" for n, v in zip(row.inputs, row.input_values)),
            f"{row.output}={format_value(row.output_value, d)}",
            "  ".join(format_value(v, d) for v in row.local) if row.local is not None else "",
            format_value(row.upstream, d),
            "  ".join(
                _grad_text(row, i, d) for i in range(len(row.inputs)) if row.grads[i] is not None
            ),
            ", ".join(self._(p) for p in row.patterns),
        )

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)


_HEADER = (
    "#",
    N_("gate"),
    N_("inputs"),
    N_("output"),
    N_("local"),
    N_("upstream"),
    N_("gradients"),
    N_("pattern"),
)
_ALIGN = ("right", "left", "right", "right", "right", "right", "right", "left")


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _line(cells: tuple, widths: list) -> str:
    return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths)).rstrip()


def _grad_text(row: Row, i: int, digits: int) -> str:
    op = "+=" if row.forked[i] else "="
    return f"d{row.inputs[i]} {op} {format_value(row.grads[i], digits)}"


def format_value(value: Any, digits: int = DIGITS, small: int = 4) -> str:
    """A number with ``digits`` significant digits (``0.116``, ``-0.534``, ``-4``, ``1.2e-05``);
    an array as its values when it has at most ``small`` elements, else as its shape and dtype
    (``(5,3) float64``)."""
    if isinstance(value, Node):
        value = value.data
    if value is None:
        return "-"
    array = np.asarray(value)
    if np.iscomplexobj(array):
        return str(value)
    if array.ndim == 0:
        return _number(float(array), digits)
    if array.size > small:
        return f"{shape_text(array.shape)} {array.dtype}"
    text = np.array2string(
        array, separator=" ", formatter={"all": lambda v: _number(float(v), digits)}
    )
    return " ".join(text.split())


def check_digits(digits: Any) -> int:
    """``digits`` as an int from 1 to 15, or a ValueError naming it."""
    if (
        isinstance(digits, bool)
        or not isinstance(digits, (int, np.integer))
        or not (1 <= digits <= 15)
    ):
        raise ValueError(f"digits must be a whole number from 1 to 15, got {digits!r}")
    return int(digits)


def _number(x: float, digits: int) -> str:
    """``x`` rounded to ``digits`` significant digits, without trailing zeros; exponent form
    below 1e-4 or from 1e6 on (every digit of a whole number below 1e6 is kept)."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    magnitude = math.floor(math.log10(abs(x)))
    if -4 <= magnitude < 6:
        text = f"{x:.{max(0, digits - 1 - magnitude)}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def shape_text(shape: tuple) -> str:
    """A shape as the notes write it: ``(5,3)``."""
    return "(" + ",".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


_INFIX = {"+", "-", "*", "/", "**", "@"}


def formula(wire: Wire, args: list[str]) -> str:
    """The gate's operation written out on its input names: ``x + y``, ``q * z``, ``t4 +1``,
    ``exp(t4)``; a symbol with a standalone ``x`` (``1/x``) has it replaced by the argument."""
    label = wire.label
    if len(args) == 2 and label in _INFIX:
        return f"{args[0]} {label} {args[1]}"
    if len(args) == 1 and label[:1] in "+-*/" and label not in _INFIX:
        return f"{args[0]} {label}"
    if len(args) == 1 and re.search(r"\bx\b", label):
        return re.sub(r"\bx\b", args[0], label)
    return f"{label}({', '.join(args)})"


def _is_scalar(wire: Wire, inputs: tuple) -> bool:
    return all(np.size(w.data) == 1 for w in (wire, *inputs))


def _local_gradients(wire: Wire) -> tuple:
    """A scalar gate's local gradients: its backward with an upstream gradient of 1."""
    node = wire.node
    seed = 1.0 if type(node.data) is float else np.ones_like(node.data)
    grads = node._gate.backward(context(node, wire.name), seed)
    grads = (
        grads if isinstance(grads, tuple) else tuple(grads) if isinstance(grads, list) else (grads,)
    )
    return tuple(None if g is None else _plain(g) for g in grads)


def _plain(value: Any) -> Any:
    """A scalar as a float, an array as an ndarray (a complex number, which only a gate's
    mistake can produce, is kept as it is so that it shows)."""
    value = value.data if isinstance(value, Node) else value
    if np.iscomplexobj(value):
        return value
    if np.ndim(value) == 0 or np.size(value) == 1:  # item(): float() refuses a (1, 1) array
        return float(np.asarray(value).item())
    return np.asarray(value)


def _tensor_rules(circuit: Circuit, step: Any, grads: tuple) -> tuple[str, ...]:
    """Dimension analysis for a tensor gate: each input's gradient as the gate's own backward
    records it, over the wires' names, with each term's shape (``dW = dD @ X.T : (5,10) =
    (5,3) @ (3,10)``); the gradients' shapes alone where that backward cannot be recorded (it
    leaves chainrule)."""
    wire, inputs = step.wire, step.inputs
    try:
        return recorded_rules(circuit, wire, step.upstream)
    except (GateError, RuntimeError):
        out = f"d{wire.name} {shape_text(np.shape(wire.data))}"
        lines = [
            f"d{w.name} {shape_text(np.shape(w.data))} <- {out}"
            for w, g in zip(inputs, grads)
            if g is not None
        ]
        return tuple(dict.fromkeys(lines))


_LONGEST_RULE = 80  # characters of a gradient's expression shown in a table


def recorded_rules(circuit: Circuit, wire: Wire, upstream: Any) -> tuple[str, ...]:
    """``d<input> = <expression> : <shapes>`` for each input of ``wire``'s gate that needs a
    gradient, read off its recorded backward (see :mod:`chainrule.stage.record`)."""
    node = wire.node
    up = upstream_leaf(node, upstream.data if isinstance(upstream, Node) else upstream)
    grads = record_backward(node, up, context(node, wire.name))
    refs = {w.node: _named(w.name, w.data) for w in circuit.wires}
    refs[up] = _named(f"d{wire.name}", wire.data)
    expressions = Expressions(wire.gate.name, Namespace(), refs)
    lines = []
    for w, g in zip(circuit.inputs_of(wire), grads):
        if g is None or w.is_constant:
            continue
        tree = simplify(expressions.root(g))
        text = ast.unparse(tree)
        if len(text) > _LONGEST_RULE:  # a long rule (batch norm's) is shown by its shapes only
            shape, out = shape_text(np.shape(w.data)), shape_text(np.shape(wire.data))
            lines.append(f"d{w.name} {shape} <- d{wire.name} {out}")
        else:
            lines.append(f"d{w.name} = {text} : {_shapes(tree)}")
    return tuple(dict.fromkeys(lines))  # x * x: both slots say the same


def _named(name: str, data: Any) -> ast.expr:
    tree = ast.Name(name, ast.Load())
    tree.cr_shape = np.shape(data)
    return tree


def _shapes(tree: ast.expr) -> str:
    """The shape of an expression and, for a binary operation, of its two operands."""
    shape = getattr(tree, "cr_shape", None)
    text = "?" if shape is None else shape_text(shape)
    if isinstance(tree, ast.BinOp):
        left, right = (getattr(t, "cr_shape", None) for t in (tree.left, tree.right))
        if left is not None and right is not None:
            op = ast.unparse(ast.BinOp(ast.Name("a"), tree.op, ast.Name("b")))[2:-2]
            return f"{text} = {shape_text(left)} {op} {shape_text(right)}"
    if isinstance(tree, ast.Call) and tree.args:
        source = getattr(tree.args[0], "cr_shape", None)
        if source is not None and source != shape:
            return f"{text} <- {shape_text(source)}"
    return text


def explain(
    output: Node, digits: int = DIGITS, grad: Any = None, lang: str | None = None
) -> Explanation:
    """The backward pass of ``output``'s circuit as rows, in the order backprop takes them
    (numbers shown with ``digits`` significant digits). ``grad`` is the upstream gradient on the
    output, as for ``backward()`` (needed when the output has more than one element). Works the
    same before and after ``backward()``: the gradients shown are those of one backward sweep
    from ``output``, not what several ``backward()`` calls accumulated in ``.grad``.
    ``lang`` (``en``, ``ko``, ``zh``) is the language of the headers and pattern names (default:
    the current one, see :mod:`chainrule.i18n`)."""
    digits = check_digits(digits)
    lang = resolve(lang)
    circuit = trace(output)
    steps = circuit.backward_steps(grad)
    totals: dict[Wire, Any] = {}
    rows = []
    for number, step in enumerate(steps, 1):
        wire, inputs = step.wire, step.inputs
        scalar = _is_scalar(wire, inputs)
        grads = tuple(
            None if g is None or w.is_constant else _plain(g)
            for w, g in zip(inputs, step.input_grads)
        )
        forked, after = [], []
        for w, g in zip(inputs, grads):
            if g is None:
                forked.append(False)
                after.append(None)
                continue
            forked.append(w in totals)
            totals[w] = g if w not in totals else totals[w] + g
            after.append(totals[w])
        patterns = tuple(p for p in (wire.gate.pattern, FORK if any(forked) else None) if p)
        rows.append(
            Row(
                step=number,
                gate=wire.gate.name,
                label=wire.label,
                output=wire.name,
                inputs=tuple(w.name for w in inputs),
                input_values=tuple(_plain(w.data) for w in inputs),
                output_value=_plain(wire.data),
                local=_local_gradients(wire) if scalar else None,
                upstream=_plain(step.upstream),
                grads=grads,
                totals=tuple(after),
                forked=tuple(forked),
                patterns=patterns,
                rules=() if scalar else _tensor_rules(circuit, step, grads),
            )
        )
    gradients = {w.name: totals.get(w, _plain(np.zeros_like(w.data))) for w in circuit.inputs}
    if circuit.output.is_leaf and not circuit.output.is_constant:
        seed = np.ones_like(circuit.output.data) if grad is None else grad
        gradients[circuit.output.name] = _plain(seed)
    return Explanation(circuit, rows, gradients, digits, lang)
