"""The staged program: a traced circuit's forward stages, then its recorded backward in reverse.

Forward: one stage per gate, in the circuit's order (:class:`chainrule.trace.Circuit`, the
notes' order), each written with its gate's forward code. Backward: the gates are visited in
reverse; each gate's backward is run recorded (:mod:`chainrule.stage.record`) on a leaf standing
for ``d<name>``, and each input's gradient is written with the forward code of the gates that
backward recorded: one assignment ``d<input> = ...`` for the first contribution and ``+=`` for
each later one where a value forks. Recorded temporaries used once are folded into one
expression; a gradient that is one number everywhere (a summed loss's seed) is folded into the
lines that use it; gradients nobody asked for are not written.
"""

from __future__ import annotations

import ast
from collections import ChainMap
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import Node
from ..trace import Circuit
from .code import Namespace, StageError, annotate, gate_template, identifier, parse, substitute
from .lower import Body
from .record import Expressions, constant_number, record_backward, upstream_leaf
from .simplify import fill, number, simplify

__all__ = ["Program", "write_program"]

_MAX_DERIVED_NAME = 8  # gate-derived names ("sigy", "xpysqr") longer than this become t<k>


class _Var:
    """A value of the staged program: an input, a constant or a stage's output."""

    __slots__ = ("node", "name", "expr", "stage", "needs")

    def __init__(self, node: Node, name: str, expr: ast.expr, stage: int, needs: bool) -> None:
        self.node, self.name, self.expr, self.stage, self.needs = node, name, expr, stage, needs

    @property
    def shape(self) -> tuple:
        return np.shape(self.node.data)

    @property
    def dtype(self) -> np.dtype:
        return np.asarray(self.node.data).dtype


@dataclass
class Program:
    """What :func:`write_program` produces: the body, the module namespace and the returns
    (the output's name, then the extra outputs' expressions, then the gradients)."""

    body: Body
    namespace: Namespace
    output: str
    gradients: list[str]
    values: list[str]


def write_program(
    fname: str,
    inputs: list[Node],
    arg_names: list[str],
    positions: tuple,
    out: Node,
    hints: dict[int, str],
    buffers: bool,
    namespace: Namespace,
    *,
    order: list[Node] | None = None,
    values: tuple = (),
    fresh_gradients: bool = False,
) -> Program:
    """The staged code of ``out``'s circuit over ``inputs`` (named ``arg_names``, already claimed
    in ``namespace``; two inputs may share a name), with gradients for the inputs at
    ``positions``.

    ``order`` (default: the circuit's, the notes' order) is the forward order of every node to
    stage, inputs included; ``values`` are more nodes whose forward values are returned. With
    ``fresh_gradients`` the returned gradients are new arrays at every call (not buffers),
    since their caller hands them on as ``.grad``."""
    body = Body(namespace, buffers)
    nodes = order if order is not None else [wire.node for wire in Circuit(out).wires]
    index = {node: i for i, node in enumerate(inputs)}
    variables: dict[Node, _Var] = {}
    stages: list[_Var] = []
    for node in nodes:
        if node in index:
            i = index[node]
            var = _Var(node, arg_names[i], _name(arg_names[i], node), 0, i in positions)
        elif node._gate is None:
            if node.requires_grad:
                raise StageError(
                    f"stage: f uses a tensor of shape {np.shape(node.data)} that requires grad but "
                    "is not one of its inputs; pass it as an argument (and list it in wrt) or "
                    "detach it"
                )
            var = _Var(node, "", parse(namespace.lit(node.data)), 0, False)
        else:
            needs = node.requires_grad and any(variables[i].needs for i in node.inputs)
            var = _Var(node, "", None, len(stages) + 1, needs)
            stages.append(var)
        variables[node] = var
    root = variables[out]
    _name_stages(stages, variables, hints, fname, arg_names, namespace)

    readable: dict[_Var, str] = {}
    body.emit("# forward pass")
    for var in stages:
        node = var.node
        template = gate_template(node, namespace)
        tree = substitute(template, [variables[i].expr for i in node.inputs])
        tree = simplify(annotate(tree, var.dtype))
        readable[var] = f"{var.name} = {ast.unparse(tree)}"
        body.assign(var.name, tree, var.shape, var.dtype)
        body.comment(f"({var.stage})")

    wrt = {inputs[p] for p in positions}
    backward = _Backward(body, namespace, variables, wrt, wrt if fresh_gradients else set())
    if root.needs:
        body.emit(f"# backward pass: d<name> is the gradient of {root.name} with respect to <name>")
        backward.seed(root)
        # latest-made gate first, as the engine sweeps: forks then add up in the engine's order
        for var in sorted(stages, key=lambda v: v.node._stamp):
            if var.needs and var.node in backward.values:
                body.emit(f"# backprop {readable[var]}")
                backward.step(var)
    results = []
    for p in positions:
        var = variables.get(inputs[p]) or _Var(inputs[p], arg_names[p], None, 0, True)
        results.append(backward.result(var, root))
    returned = [ast.unparse(variables[node].expr) for node in values]
    return Program(body, namespace, root.name, results, returned)


def _name(name: str, node: Node) -> ast.expr:
    return annotate(ast.Name(name, ast.Load()), np.asarray(node.data).dtype)


def _name_stages(stages, variables, hints, fname, arg_names, namespace) -> None:
    """The user's names where known (f's locals, a node's ``name``), the output after f, then
    names derived from the gate (``sigy``), else ``t<k>``."""
    for var in stages:
        user = hints.get(id(var.node)) or var.node.name or ""
        if var is stages[-1] and not user:  # the output
            user = fname if fname not in arg_names else "out"
        if identifier(user):
            var.name = namespace.claim(user)
    for var in stages:
        if not var.name:
            var.name = namespace.claim(_derived_name(var, variables) or f"t{var.stage}")
        var.expr = _name(var.name, var.node)


def _derived_name(var: _Var, variables: dict) -> str:
    template = getattr(var.node._gate, "stage_name", None)
    if callable(template):
        template = template(var.node.options)
    if template is None:
        return ""
    args = [variables[i].name for i in var.node.inputs]
    if not all(identifier(a) == a for a in args):
        return ""
    name = template.format(*args)
    return name if len(name) <= _MAX_DERIVED_NAME and identifier(name) == name else ""


def _typed_number(value: float, dtype: np.dtype) -> ast.expr:
    """A folded gradient's number: a plain literal for float64, else typed (``np.float32(1.0)``)
    so that an array made from it keeps the value's dtype."""
    text = repr(float(value))
    return parse(text if dtype == np.float64 else f"np.{np.dtype(dtype).name}({text})")


class _Backward:
    """The backward half: gradient variables, their values while recording, and forks."""

    def __init__(
        self, body: Body, namespace: Namespace, variables: dict, wrt: set, fresh: set
    ) -> None:
        self.body = body
        self.fresh = fresh  # gradients written as new arrays, never into buffers
        self.namespace = namespace
        self.variables = variables
        self.wrt = wrt
        self.values: dict[Node, Any] = {}  # the gradient reaching each value (for recording)
        self.names: dict[Node, str] = {}  # each value's gradient variable
        self.folded: dict[Node, ast.expr] = {}  # gradients that are one number everywhere
        self.totals: dict[Node, int] = {}  # contributions each gradient will receive
        self.refs = {v.node: v.expr for v in variables.values()}  # forward values by node
        for var in variables.values():
            if var.stage and var.needs:
                for inp in var.node.inputs:
                    if variables[inp].needs:
                        self.totals[inp] = self.totals.get(inp, 0) + 1

    def seed(self, root: _Var) -> None:
        shape, dtype = root.shape, root.dtype
        self.values[root.node] = np.ones(shape, dtype)
        if root.stage and not shape:
            self.folded[root.node] = _typed_number(1.0, dtype)  # folded into the first stage
            return
        suffix = "" if dtype == np.float64 else f", {self.namespace.lit(dtype)}"
        self.totals[root.node] = self.totals.get(root.node, 0) + 1
        self.contribute(root, parse(f"np.ones({shape!r}{suffix})"), "(seed)")

    def step(self, var: _Var) -> None:
        """Stage the backward of ``var``'s gate."""
        node = var.node
        upstream = upstream_leaf(node, self.values[node])
        # Inputs of the staged function without a gradient (a data batch) are recorded through
        # as well, so that what the backward computes from them alone (``x.T``) is a gate, not
        # an array frozen at its traced value.
        constant = [
            inp
            for inp in node.inputs
            if not inp.requires_grad and inp._gate is None and self.variables[inp].name
        ]
        for inp in constant:
            inp.requires_grad = True
        try:
            grads = record_backward(node, upstream)
        finally:
            for inp in constant:
                inp.requires_grad = False
        contributions = [
            (self.variables[inp], g)
            for inp, g in zip(node.inputs, grads)
            if g is not None and self.variables[inp].needs
        ]
        refs = ChainMap({}, self.refs)
        refs[upstream] = self.folded.get(node) or _name(self.names[node], node)
        temps = iter(range(1, 1_000_000))

        def shared(n: Node, tree: ast.expr) -> ast.expr:
            name = self.namespace.claim(f"d{var.name}_{next(temps)}")
            shape, dtype = np.shape(n.data), np.asarray(n.data).dtype
            self.body.assign(name, simplify(tree), shape, dtype)
            self.body.comment(f"({var.stage})")
            return _name(name, n)

        def materialize(n: Node, arg: ast.expr) -> ast.expr:
            if n is not upstream:
                return arg
            name = self.namespace.claim(f"d{var.name}")
            tree = parse(f"np.broadcast_to({ast.unparse(refs[n])}, {var.shape!r})")
            self.body.assign(name, tree, var.shape, var.dtype)
            self.body.comment(f"({var.stage})")
            refs[n] = _name(name, node)
            return refs[n]

        expressions = Expressions(node._gate.name, self.namespace, refs, shared, materialize)
        expressions.count([g for _, g in contributions])
        later = [target.node for target, _ in contributions]
        for k, (target, g) in enumerate(contributions):
            fresh = target.node not in self.names and target.node not in self.folded
            self.contribute(target, expressions.root(g), f"({var.stage})")
            name = self.names.get(target.node)
            alone = not any(n is target.node for n in later[k + 1 :])
            if fresh and name and alone and expressions.uses.get(g, 0) > 1:
                refs[g] = _name(name, target.node)  # reuse the variable where g recurs
            value = np.asarray(g.data)
            previous = self.values.get(target.node)
            self.values[target.node] = value if previous is None else previous + value

    def contribute(self, target: _Var, tree: ast.expr, note: str) -> None:
        """``d<target> = tree`` the first time, ``+=`` after (owning its memory first when more
        will be added or it is returned); a number everywhere, wanted once, is folded."""
        node = target.node
        shape, dtype = target.shape, target.dtype
        tree = simplify(tree)
        constant = fill(tree)
        if (
            constant is not None
            and node not in self.names
            and self.totals.get(node, 0) == 1
            and node not in self.wrt
            and target.stage
        ):
            constant = _typed_number(constant_number(constant), dtype)
            self.folded[node] = constant
            text = ast.unparse(constant)
            self.body.emit(f"# the gradient on {target.name} is {text} everywhere: folded below")
            return
        if number(tree) is not None:  # a constant: give it the variable's shape
            suffix = "" if dtype == np.float64 else f", {self.namespace.lit(dtype)}"
            tree = parse(f"np.full({shape!r}, {ast.unparse(tree)}{suffix})")
        if node in self.names:
            self.body.accumulate(self.names[node], tree, shape, dtype)
        else:
            name = self.namespace.claim(f"d{target.name}")
            own = self.totals.get(node, 0) > 1 or node in self.wrt
            buffer = node not in self.fresh
            self.body.assign(name, annotate(tree, dtype), shape, dtype, own=own, buffer=buffer)
            self.names[node] = name
        self.body.comment(note)

    def result(self, var: _Var, root: _Var) -> str:
        """The returned gradient of input ``var`` (zeros where the output does not depend on it)."""
        if var.node in self.names:
            return self.names[var.node]
        name = self.namespace.claim(f"d{var.name}")
        dtype = var.dtype
        suffix = "" if dtype == np.float64 else f", {self.namespace.lit(dtype)}"
        self.body.emit(f"{name} = np.zeros({var.shape!r}{suffix})")
        self.body.comment(f"{root.name} does not depend on {var.name}")
        self.names[var.node] = name
        return name
