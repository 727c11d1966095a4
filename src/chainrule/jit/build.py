"""From one traced call to its staged version: the program, and how to replay the call's effects.

The call's record (the circuit it made) is staged by :func:`chainrule.stage.program.write_program`
over the leaves it read: the call's array arguments, and tensors that existed before it (the
model's parameters and buffers wrapped as tensors), which the staged function takes as
arguments so that they are read live at every call. Leaves the call made itself (a literal,
an array computed with NumPy) are constants of the staged code. Gates are staged in the order
they were made, the eager order (random draws come out the same). The returned gradients are
handed to the leaves' ``.grad`` as eager backward does, after and before the ``.grad`` resets the
call made (``opt.zero_grad()``), in the same order.

A :class:`Fingerprint` is what two traces of one signature must share for the staged code to
stand for both: the same gates with the same options over the same leaves, and constants with
the same values. Anything that differs was computed outside chainrule from something that
changes between calls, which staged code would freeze.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import GateError, Node, _run_hooks
from ..nn.module import Module
from ..stage.capture import local_names
from ..stage.code import Namespace, identifier
from ..stage.program import write_program
from ..stage.staged import compile_module
from ..tensor import Tensor
from .signature import Call
from .tracer import Tracer, has_hooks

__all__ = ["Entry", "Unstageable", "build_entry", "fingerprint"]


class Unstageable(Exception):
    """The traced call cannot be staged; the message says why and where."""


@dataclass
class Entry:
    """A staged signature: the compiled function and what a call does around it."""

    fn: Callable
    source: str
    live: list[Node]  # leaves read at each call (after the call's arrays)
    targets: list[tuple]  # for each gradient returned: ("arg", k) or ("live", node)
    events: list[tuple]  # ("reset", target, None | "zeros") and ("backward",) in order
    template: Any  # the returned structure, tensors as ("out", k)
    guards: list[tuple]  # (module, setting names, settings, ids of parameters, buffers, children)
    kept: list  # those parameters, buffers and children, alive so that their ids stay theirs

    def guards_hold(self) -> bool:
        """Whether every module the call used is as it was traced (mode and settings,
        parameters, buffers, children) and still has no hooks (staged code would not call
        them)."""
        for module, keys, settings, params, buffers, children in self.guards:
            state = module.__dict__
            if (
                tuple([state.get(k, _MISSING) for k in keys]) != settings
                or tuple(map(id, module._parameters.values())) != params
                or tuple(map(id, module._buffers.values())) != buffers
                or tuple(map(id, module._modules.values())) != children
                or has_hooks(module)
            ):
                return False
        return True

    def run(self, call: Call) -> Any:
        """The staged call: its outputs, with every ``.grad`` effect of the eager call."""
        values = [a.data if isinstance(a, Tensor) else a for a in call.arrays]
        values.extend(leaf._data for leaf in self.live)
        outputs, grads = self.fn(*values)
        for event in self.events:
            if event[0] == "reset":
                node = _target(event[1], call)
                node.grad = None if event[2] is None else np.zeros_like(node._data)
                continue
            for target, g in zip(self.targets, grads):
                node = _target(target, call)
                if node._hooks:
                    g = _run_hooks(node, g)
                node._accumulate(g)
        return _rebuild(self.template, outputs)


_MISSING = object()
_PLAIN = (bool, int, float, str, type(None))


def _guard(module: Module) -> tuple:
    """What a module must still be for a staged call to stand for it: its plain settings
    (``training``, dropout's ``p``, batch norm's ``momentum`` and ``eps``...: Python values the
    trace read, frozen in staged code), and by id its parameters, buffers and children (the entry
    keeps them alive, so an id stays theirs)."""
    settings = {
        k: v
        for k, v in module.__dict__.items()
        if type(v) in _PLAIN or (type(v) is tuple and all(type(i) in _PLAIN for i in v))
    }
    return (
        module,
        tuple(settings),
        tuple(settings.values()),
        tuple(map(id, module._parameters.values())),
        tuple(map(id, module._buffers.values())),
        tuple(map(id, module._modules.values())),
    )


def _target(target: tuple, call: Call) -> Node:
    return call.arrays[target[1]] if target[0] == "arg" else target[1]


def _rebuild(template: Any, outputs: tuple) -> Any:
    if isinstance(template, tuple) and len(template) == 2 and template[0] == "out":
        value = outputs[template[1]]
        return Tensor(value.copy() if np.ndim(value) else value)
    if isinstance(template, list) and template and template[0] == "seq":
        kind, items = template[1], [_rebuild(t, outputs) for t in template[2]]
        return kind(items)
    if isinstance(template, dict):
        return {k: _rebuild(v, outputs) for k, v in template.items()}
    return template[1]  # ("static", value)


def _flatten_output(value: Any, nodes: list[Node]) -> Any:
    """The returned structure with each tensor replaced by ("out", k); refuses other values."""
    if isinstance(value, Tensor):
        nodes.append(value)
        return ("out", len(nodes) - 1)
    if isinstance(value, (tuple, list)):
        return ["seq", type(value), [_flatten_output(v, nodes) for v in value]]
    if isinstance(value, dict):
        return {k: _flatten_output(v, nodes) for k, v in value.items()}
    if value is None or isinstance(value, (bool, str)):
        return ("static", value)
    if isinstance(value, Node):
        raise Unstageable(f"it returns a {type(value).__name__}: jit stages tensor circuits")
    raise Unstageable(
        f"it returns a {type(value).__name__}; a jitted function returns tensors (and None)"
    )


def _ancestors(roots: list[Node]) -> list[Node]:
    """Every node the roots were computed from: leaves in the order first reached, then gates in
    the order they were made."""
    seen: set[Node] = set()
    leaves: list[Node] = []
    gates: list[Node] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if not isinstance(node, Tensor):
            raise Unstageable(f"it computes with a {type(node).__name__}: jit stages tensors")
        if node._gate is None:
            leaves.append(node)
        else:
            gates.append(node)
            stack.extend(reversed(node.inputs))
    gates.sort(key=lambda n: -n._stamp)  # stamps count down: the first made has the largest
    return leaves + gates


def _leaf_name(node: Node, k: int, outer: dict[int, str]) -> str:
    """A parameter's name in staged code: its state-dict name (``0.weight`` as
    ``layer0_weight``), its own name, the name ``fn`` knows it by, else ``p<k>``."""
    given = getattr(node, "state_name", None) or node.name or outer.get(id(node), "")
    name = re.sub(r"\W", "_", given)
    if name and name[0].isdigit():
        name = "layer" + name
    return name if identifier(name) == name else f"p{k}"


def _outer_names(fn: Callable) -> dict[int, str]:
    """The tensors ``fn`` reads from its closure and its module's globals, by id: their names."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    names: dict[int, str] = {}
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, Node):
            names.setdefault(id(value), name)
    scope = getattr(fn, "__globals__", {})
    for name in code.co_names:
        if isinstance(scope.get(name), Node):
            names.setdefault(id(scope[name]), name)
    return names


def build_entry(
    fn: Callable, call: Call, result: Any, tracer: Tracer, frame: Any
) -> tuple[Entry, Fingerprint]:
    """The staged version of the traced call, or :class:`Unstageable` saying why not."""
    if tracer.problems:
        raise Unstageable(tracer.problems[0])
    if len(tracer.backwards) > 1:
        raise Unstageable(f"it calls backward() {len(tracer.backwards)} times")
    backward = tracer.backwards[0] if tracer.backwards else None
    if backward is not None and (backward.seeded or backward.create_graph):
        option = "grad=" if backward.seeded else "create_graph=True"
        raise Unstageable(f"backward({option}) is not staged (at {backward.site})")
    outputs: list[Node] = []
    template = _flatten_output(result, outputs)
    if backward is None and not tracer.inference and any(t.requires_grad for t in outputs):
        raise Unstageable(
            "it returns a tensor that requires grad without calling backward() (jit stages a "
            "whole training step; for inference, call it under cr.no_grad())"
        )
    roots = outputs + ([backward.root] if backward is not None else [])
    if not roots:
        raise Unstageable("it computes no tensor (nothing to stage)")
    order = _ancestors(roots)
    for node in order:
        if node._gate is not None and (node._hooks or node._retain):
            what = "register_hook" if node._hooks else "retain_grad()"
            raise Unstageable(f"{what} on a value computed inside the function is not staged")

    sources, created = _sources(order, call, tracer)
    namespace = Namespace()
    arg_names = [namespace.claim(n) for n in call.names]
    live = [n for n in order if sources.get(n, ("",))[0] == "live"]
    outer = _outer_names(fn)
    live_names = [namespace.claim(_leaf_name(n, k, outer)) for k, n in enumerate(live)]
    for array, name in zip(call.arrays, arg_names):
        namespace.name_input(array.data if isinstance(array, Tensor) else array, name)
    for node, name in zip(live, live_names):
        namespace.name_input(node._data, name)
    inputs = [n for n in order if n in sources]
    live_name = {node: name for node, name in zip(live, live_names)}
    names = [arg_names[sources[n][1]] if sources[n][0] == "arg" else live_name[n] for n in inputs]
    positions = ()
    if backward is not None:
        reached = _reached(backward.root)
        positions = tuple(i for i, n in enumerate(inputs) if n in reached)
    fname = identifier(getattr(fn, "__name__", "")) or "step"
    out = backward.root if backward is not None else outputs[-1]
    try:
        program = write_program(
            fname,
            inputs,
            names,
            positions,
            out,
            local_names(frame),
            True,
            namespace,
            order=order,
            values=tuple(outputs),
            fresh_gradients=True,
        )
    except GateError as err:  # a gate whose backward or forward cannot be staged, by name
        raise Unstageable(str(err)) from None
    values = "(" + "".join(f"{v}, " for v in program.values) + ")"
    grads = "(" + "".join(f"{g}, " for g in program.gradients) + ")"
    program.body.emit(f"return {values}, {grads}")
    spec = ", ".join(
        f"{n}: {np.asarray(a.data if isinstance(a, Tensor) else a).dtype}{list(np.shape(a))}"
        for n, a in zip(arg_names, call.arrays)
    )
    func_name = namespace.claim(f"{fname}_staged")
    staged, source = compile_module(
        program, func_name, f"{fname} staged by cr.jit at {spec}", arg_names + live_names
    )
    targets = [sources[inputs[p]] for p in positions]
    targets = [t if t[0] == "arg" else ("live", t[1]) for t in targets]
    events = []
    for event in tracer.events:
        if event[0] == "backward":
            events.append(("backward",))
            continue
        node = event[1]
        where = _arg_index(node, call)
        events.append(("reset", ("arg", where) if where is not None else ("live", node), event[2]))
    modules = list(tracer.modules.values())
    guards = [_guard(m) for m in modules]
    kept = [
        v
        for m in modules
        for v in (*m._parameters.values(), *m._buffers.values(), *m._modules.values())
    ]
    entry = Entry(staged, source, live, targets, events, template, guards, kept)
    return entry, fingerprint(call, order, sources, created, outputs, backward, tracer)


def _reached(root: Node) -> set[Node]:
    """The leaves a backward from ``root`` gives a gradient (through values requiring grad)."""
    seen, leaves, stack = {root}, set(), [root]
    while stack:
        node = stack.pop()
        if node._gate is None:
            leaves.add(node)
            continue
        for inp in node.inputs:
            if inp.requires_grad and inp not in seen:
                seen.add(inp)
                stack.append(inp)
    return leaves


def _arg_index(node: Node, call: Call) -> int | None:
    for k, a in enumerate(call.arrays):
        if a is node:
            return k
    return None


def _sources(order: list[Node], call: Call, tracer: Tracer) -> tuple[dict, dict]:
    """Where each input leaf of the staged code comes from (("arg", k) or ("live", node)), and
    the constants the call made itself (id -> node)."""
    by_id = {id(a): k for k, a in enumerate(call.arrays) if not isinstance(a, Tensor)}
    tensors = {id(a): k for k, a in enumerate(call.arrays) if isinstance(a, Tensor)}
    sources: dict[Node, tuple] = {}
    created: dict[int, Node] = {}
    for node in order:
        if node._gate is not None:
            continue
        if id(node) in tensors:
            if not node.is_leaf:
                raise Unstageable("an argument is a tensor computed outside the function")
            sources[node] = ("arg", tensors[id(node)])
        elif id(node._data) in by_id:
            if node.requires_grad:
                raise Unstageable("it creates a tensor that requires grad inside the function")
            sources[node] = ("arg", by_id[id(node._data)])
        elif id(node) in tracer.created:
            if node.requires_grad:
                raise Unstageable("it creates a tensor that requires grad inside the function")
            created[id(node)] = node
        else:
            sources[node] = ("live", node)
    return sources, created


@dataclass
class Fingerprint:
    """What two traces of a signature must share (see the module docstring)."""

    items: list[tuple]
    constants: list[tuple]  # (value copy, where it was made)
    options: list[tuple]  # (gate name, option, copy of the array, the array)

    def differs(self, other: Fingerprint) -> str | None:
        """Why ``other`` cannot share this trace's staged code, or None."""
        if self.items != other.items:
            return "the function computes a different circuit from call to call"
        for (a, site), (b, _) in zip(self.constants, other.constants):
            if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=True):
                return (
                    f"an array of shape {a.shape} computed outside chainrule changes from call "
                    f"to call (made at {site}); compute it with chainrule operations or pass it "
                    "as an argument"
                )
        for (gate, option, a, original), (_, _, b, other_original) in zip(
            self.options, other.options
        ):
            if original is other_original:  # the same array (a module's buffer): read live
                continue
            if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=True):
                return (
                    f"the array option {option!r} of gate '{gate}' changes from call to call "
                    "(computed outside chainrule); pass it as an argument"
                )
        return None


def fingerprint(
    call: Call,
    order: list[Node],
    sources: dict,
    created: dict,
    outputs: list[Node],
    backward: Any,
    tracer: Tracer,
) -> Fingerprint:
    position = {node: i for i, node in enumerate(order)}
    arguments = {id(a.data if isinstance(a, Tensor) else a): k for k, a in enumerate(call.arrays)}
    items: list[tuple] = []
    constants: list[tuple] = []
    options: list[tuple] = []
    for node in order:
        if node._gate is None:
            if node in sources:
                kind, where = sources[node]
                items.append(("leaf", kind, where if kind == "arg" else id(where)))
            else:
                items.append(("const",))
                constants.append((np.array(node._data, copy=True), tracer.sites.get(id(node), "?")))
            continue
        static = []
        for name, value in sorted(node.options.items()):
            if isinstance(value, np.ndarray) and id(value) in arguments:
                static.append((name, "argument", arguments[id(value)]))
            elif isinstance(value, np.ndarray):
                options.append((node._gate.name, name, value.copy(), value))
                static.append((name, "array"))
            elif isinstance(value, (np.random.Generator, Module)):
                static.append((name, id(value)))
            else:
                static.append((name, _comparable(value, arguments)))
        items.append(("gate", node._gate, tuple(static), tuple(position[i] for i in node.inputs)))
    items.append(("outputs", tuple(position[n] for n in outputs)))
    items.append(("backward", position[backward.root] if backward is not None else None))
    events = []
    for event in tracer.events:
        if event[0] == "reset":
            events.append(("reset", id(event[1]), event[2]))
        else:
            events.append(event)
    items.append(("events", tuple(events)))
    return Fingerprint(items, constants, options)


def _comparable(value: Any, arguments: dict) -> Any:
    """An option as something ``==`` compares: slices and index arrays inside a tuple by their
    values (an array that is an argument as that argument), other unhashable objects by
    identity."""
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_comparable(v, arguments) for v in value))
    if isinstance(value, slice):
        return (
            "slice",
            *(_comparable(v, arguments) for v in (value.start, value.stop, value.step)),
        )
    if isinstance(value, np.ndarray):
        if id(value) in arguments:
            return ("argument", arguments[id(value)])
        return ("array", value.shape, value.dtype.str, value.tobytes())
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value
