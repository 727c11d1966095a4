"""The recorded circuit behind a result, as a read-only structure.

``cr.trace(output)`` lists the circuit's wires (values) in topological order, inputs first, each
with a display name, the gate that produced it and its inputs; ``Circuit.backward_steps()`` runs a
full backward sweep and reports, for every gate, its upstream gradient and its inputs' gradients.
Diagrams, explanations and staged code are all readings of this one structure.

A reader works the same before and after ``backward()``. Backward releases each gate's cache to
save memory; where a reader needs a released cache it runs the gate's forward again on its
inputs' recorded values (the notes: caching is the efficient way, recomputing is possible but
wasteful, and a reader is not the hot path), and checks that the recomputed output is the
recorded one, refusing by the gate's name when it is not (a random gate, or an input edited in
place). The readers sweep with the engine's plain reference loop, not its tuned one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import RELEASED, Node, no_grad, sweep_all, topological_order

__all__ = ["Circuit", "Step", "Wire", "trace"]


@dataclass(frozen=True)
class Wire:
    """One value in the circuit: a leaf (input or constant) or a gate's output."""

    node: Node = field(repr=False)
    name: str
    index: int
    named: bool = False
    """Whether the name comes from the user's world (see :func:`trace`), not a default."""

    @property
    def data(self) -> Any:
        return self.node.data

    @property
    def gate(self) -> Any:
        return self.node._gate

    @property
    def label(self) -> str:
        """How a diagram labels the gate: its symbol, followed by its constant ``c`` when the
        gate has one (the notes' ``+1``, ``*-1``, ``*2``); empty for a leaf."""
        gate = self.node._gate
        if gate is None:
            return ""
        c = self.node.options.get("c")
        if c is None or getattr(c, "ndim", 0):
            return gate.symbol
        return f"{gate.symbol}{float(c):g}".replace("+-", "-")

    @property
    def is_leaf(self) -> bool:
        return self.node._gate is None

    @property
    def is_constant(self) -> bool:
        return self.node._gate is None and not self.node.requires_grad

    @property
    def cached(self) -> tuple:
        """What the gate cached for backward (empty for leaves); recomputed from the inputs'
        values once backward has released it."""
        if self.node._gate is None:
            return ()
        return context(self.node, self.name).saved_tensors or ()

    @property
    def grad(self) -> Any:
        """The ``.grad`` the engine left on this node (leaves, and ``retain_grad`` nodes)."""
        return self.node.grad


@dataclass(frozen=True)
class Step:
    """One gate visited by the backward sweep: its output wire, the upstream gradient arriving
    at it, and the gradient it sends to each input (None where the input needs none)."""

    wire: Wire
    inputs: tuple
    upstream: Any
    input_grads: tuple


class Circuit:
    """A read-only view of the circuit that produced ``output``."""

    def __init__(self, output: Node) -> None:
        if not isinstance(output, Node):
            raise TypeError(f"trace() needs a Value or Tensor, got {type(output).__name__}")
        self.output_node = output
        order = topological_order(output, only_grad=False)
        order.reverse()
        self._wires: dict[Node, Wire] = {}
        taken: set[str] = set()
        counters = {"input": 0, "const": 0, "gate": 0}
        names: dict[Node, str] = {}
        given = _given_names(order, output)
        # users' names first, so that a default name (t1, x0...) never displaces one of them
        for node in sorted(order, key=lambda n: n not in given):
            names[node] = _display_name(node, given.get(node), taken, counters)
            taken.add(names[node])
        for index, node in enumerate(order):
            self._wires[node] = Wire(node, names[node], index, node in given)

    @property
    def wires(self) -> list[Wire]:
        """Every value, inputs first, each after the values it was computed from."""
        return list(self._wires.values())

    @property
    def gates(self) -> list[Wire]:
        """The gate outputs, in the order forward computes them."""
        return [w for w in self._wires.values() if not w.is_leaf]

    @property
    def inputs(self) -> list[Wire]:
        """The leaves that require grad (the circuit's variables)."""
        return [w for w in self._wires.values() if w.is_leaf and not w.is_constant]

    @property
    def output(self) -> Wire:
        """The output's wire."""
        return self._wires[self.output_node]

    def wire(self, node: Node) -> Wire:
        """The wire of ``node``."""
        return self._wires[node]

    def inputs_of(self, wire: Wire) -> tuple:
        """The wires feeding ``wire``'s gate, in argument order."""
        return tuple(self._wires[n] for n in wire.node.inputs)

    def backward_steps(self, seed: Any = None) -> list[Step]:
        """Run a full backward sweep (touching no ``.grad`` and leaving the record as it is) and
        return one Step per gate in the order backprop visits them, from the output back: the
        latest-made gate first, as ``backward()`` does. Released caches are recomputed."""
        out = self.output_node
        if not out.requires_grad:
            return []
        seed = out._default_seed() if seed is None else out._check_seed(seed)
        steps: list[Step] = []

        def observe(node: Node, upstream: Any, input_grads: Any) -> None:
            if input_grads is None:
                return
            wire = self._wires[node]
            grads = tuple(
                g if g is not None and inp.requires_grad else None
                for inp, g in zip(node.inputs, input_grads)
            )
            steps.append(Step(wire, self.inputs_of(wire), upstream, grads))

        sweep_all(out, seed, observe, lambda node: context(node, self._wires[node].name))
        return steps

    def gradients(self, seed: Any = None) -> dict[str, Any]:
        """The gradient of the output on every wire that needs one, by wire name."""
        grads: dict[str, Any] = {}
        steps = self.backward_steps(seed)
        if steps:
            grads[steps[0].wire.name] = steps[0].upstream
        for step in steps:
            for wire, g in zip(step.inputs, step.input_grads):
                if g is None or wire.is_constant:
                    continue
                grads[wire.name] = g if wire.name not in grads else grads[wire.name] + g
        return grads

    def __len__(self) -> int:
        return len(self._wires)

    def __iter__(self):
        return iter(self._wires.values())

    def __repr__(self) -> str:
        lines = [f"Circuit({len(self.inputs)} inputs, {len(self.gates)} gates)"]
        for w in self._wires.values():
            if w.is_leaf:
                kind = "const" if w.is_constant else "input"
                lines.append(f"  {w.name} = {kind} {_short(w.data)}")
            else:
                args = ", ".join(i.name for i in self.inputs_of(w))
                lines.append(f"  {w.name} = {w.gate.name}({args}) -> {_short(w.data)}")
        return "\n".join(lines)


class _Recomputed:
    """A gate's context rebuilt for a reader after backward released the cache: the gate's
    forward run again on its inputs' recorded values, everything else read from the node."""

    def __init__(self, node: Node, name: str) -> None:
        self._node = node
        self._saved: tuple = ()
        gate = node._gate
        with no_grad():
            raw = gate.forward(self, *(inp.data for inp in node.inputs), **node.options)
        data = node._front._coerce(raw, gate) if type(raw) is not type(node.data) else raw
        if not _same(data, node.data):
            raise RuntimeError(
                f"cannot show '{name}' after backward(): backward released the cache of gate "
                f"'{gate.name}' and running its forward again gives a different value (a random "
                "gate, or an input changed in place); read the circuit before backward(), or "
                "call backward(retain_graph=True)"
            )
        self._saved = tuple(node.data if v is raw else v for v in self._saved)

    def save_for_backward(self, *values: Any) -> None:
        self._saved = values

    @property
    def saved_tensors(self) -> tuple:
        return self._saved

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


def context(node: Node, name: str | None = None) -> Any:
    """The context a reader hands to ``node``'s gate: the node itself while it holds its cache,
    else a :class:`_Recomputed` one (``name`` is how errors call the value)."""
    if node._saved is RELEASED:
        return _Recomputed(node, name or node._gate.name)
    return node


def _same(a: Any, b: Any) -> bool:
    if type(a) is float or type(b) is float:
        return a == b or (a != a and b != b)
    return np.shape(a) == np.shape(b) and np.array_equal(a, b, equal_nan=True)


def _short(data: Any) -> str:
    shape = getattr(data, "shape", None)
    if shape is None or shape == ():
        return f"{float(data):.6g}" if isinstance(data, (int, float)) or shape == () else repr(data)
    return f"array{tuple(shape)}"


def _given_names(order: list[Node], output: Node) -> dict[Node, str]:
    """Names from the user's world: the user's own (``name=``), a module parameter's state-dict
    name (``0.weight``, ``fc1.bias``); in a network (a circuit with module parameters) the data
    fed to a gate together with a parameter is ``x`` and an unnamed one-number output ``loss``."""
    given: dict[Node, str] = {}
    for node in order:
        name = node.name or getattr(node, "state_name", None)
        if name:
            given[node] = name
    if not any(getattr(n, "state_name", None) for n in given):
        return given
    for node in order:
        inputs = node.inputs
        if node._gate is None or not any(getattr(i, "state_name", None) for i in inputs):
            continue
        for inp in inputs:
            if inp._gate is None and not inp.requires_grad and inp not in given:
                if getattr(inp.data, "ndim", 0):
                    given[inp] = "x"
    if output not in given and output._gate is not None and getattr(output.data, "size", 1) == 1:
        given[output] = "loss"
    return given


def _display_name(node: Node, given: str | None, taken: set, counters: dict) -> str:
    """The given name (the user's or the network's, made unique), else x0, x1... for inputs,
    c0... for constants, t1, t2... for gate outputs."""
    if given:
        name, k = given, 1
        while name in taken:
            k += 1
            name = f"{given}_{k}"
        return name
    if node._gate is not None:
        prefix, key = "t", "gate"
        counters[key] += 1
        number = counters[key]
    else:
        key = "input" if node.requires_grad else "const"
        prefix = "x" if key == "input" else "c"
        number = counters[key]
        counters[key] += 1
    name = f"{prefix}{number}"
    while name in taken:
        counters[key] += 1
        name = f"{prefix}{counters[key]}"
    return name


def trace(output: Node) -> Circuit:
    """The circuit behind ``output``: its wires in topological order, with gates, inputs, cached
    values and, via :meth:`Circuit.backward_steps`, every gradient.

    Wires are named from the user's world where possible: a value's ``name``, a module
    parameter's state-dict name (``0.weight``); in a network the data fed to a layer is ``x`` and
    an unnamed one-number output ``loss``. Other inputs are ``x0, x1...``, constants ``c0...``
    and gate outputs ``t1, t2...``."""
    return Circuit(output)
