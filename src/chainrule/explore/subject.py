"""What the explorer explores: a function of named inputs, rebuilt by chainrule at new values.

A :class:`Subject` is a Python function (``cr.explore(fn, x=..., y=...)``) or a checked
expression (``chainrule explore``/``serve``, parsed by :mod:`chainrule.expr`, never evaluated).
Each change of an input rebuilds the circuit and reads it again, so every number on the page
comes from chainrule's own gates.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..engine import Node
from ..explain import DIGITS
from ..expr import Expression, parse
from ..tensor import Tensor
from ..trace import trace
from ..value import Value
from .model import ModuleGroup, describe, staged_code

__all__ = ["MAX_INPUTS", "Subject"]

MAX_INPUTS = 256
"""The most named inputs a circuit may have in the explorer."""

_RESERVED = ("digits", "title", "model")


class Subject:
    """A function of named inputs with its current values; :meth:`describe` reads its circuit."""

    def __init__(
        self,
        fn: Callable[..., Any],
        values: Mapping[str, Any],
        *,
        title: str = "",
        digits: int = DIGITS,
        model: Any = None,
        positional: Callable[..., Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"explore() needs a function, got {type(fn).__name__}")
        if len(values) > MAX_INPUTS:
            raise ValueError(f"explore(): at most {MAX_INPUTS} inputs, got {len(values)}")
        self.fn = fn
        self.values = {name: _checked(name, v) for name, v in values.items()}
        self.title = title or _title(fn, model)
        self.digits = digits
        self.model = model
        self._positional = positional or _positional(fn, list(self.values))

    @classmethod
    def from_expression(
        cls, text: str | Expression, values: Mapping[str, Any], digits: int = DIGITS
    ) -> Subject:
        """An expression of ``chainrule explain``'s language; every name needs a value."""
        expression = text if isinstance(text, Expression) else parse(text)
        for name in values:
            if name not in expression.names:
                raise ValueError(f"'{name}' does not appear in the expression")
        missing = [n for n in expression.names if n not in values]
        if missing:
            raise ValueError(
                f"no value given for {', '.join(repr(n) for n in missing)} (give each name a "
                "number)"
            )
        names = list(expression.names)

        def build(**kw: Any) -> Node:
            return expression.build(kw)

        def positional(*args: Any) -> Node:
            return expression.build(dict(zip(names, args)))

        positional.__name__ = "f"

        positional.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        )
        ordered = {n: values[n] for n in names}
        return cls(build, ordered, title=expression.text, digits=digits, positional=positional)

    def with_values(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The current values with ``changes`` applied: a number stays a number, an array keeps
        its shape."""
        values = dict(self.values)
        for name, value in changes.items():
            if name not in values:
                raise ValueError(f"there is no input named '{name}'")
            new = _checked(name, value)
            old = values[name]
            if isinstance(old, float) != isinstance(new, float) or np.shape(new) != np.shape(old):
                raise ValueError(
                    f"input '{name}' must keep its shape {np.shape(old)}, got {np.shape(new)}"
                )
            values[name] = new if isinstance(new, float) else new.astype(old.dtype)
        return values

    def build(self, values: Mapping[str, Any] | None = None) -> Node:
        """The output node of the circuit at ``values`` (the current ones by default)."""
        values = self.values if values is None else values
        args = {n: _leaf(n, v) for n, v in values.items()}
        out = self.fn(**args)
        if not isinstance(out, Node):
            raise TypeError(
                f"the explored function must return a chainrule Value or Tensor, got "
                f"{type(out).__name__}"
            )
        if np.size(out.data) != 1:
            raise ValueError(
                f"the explored function must return a single number (a loss), got shape "
                f"{np.shape(out.data)}"
            )
        if out.name is None:
            out.name = "loss" if self.model is not None else "f"
        return out

    def describe(self, changes: Mapping[str, Any] | None = None) -> dict:
        """The page's data at the current values with ``changes`` applied; on success the
        changed values become the current ones."""
        values = self.with_values(changes or {})
        with _module_calls(self.model) as groups:
            out = self.build(values)
            circuit = trace(out)
            names, arrays = list(values), list(values.values())
            fn = self._positional
            if self.model is not None:
                fn, extra_names, extra = _with_parameters(self.fn, names, self.model)
                names, arrays = names + extra_names, arrays + extra
            code = staged_code(fn, names, arrays, circuit)
            data = describe(
                out,
                title=self.title,
                digits=self.digits,
                inputs=[_field(n, v) for n, v in values.items()],
                code=code,
                modules=[g for g in groups if _drawable(g, circuit)],
            )
        self.values = values
        return data


def _title(fn: Callable, model: Any) -> str:
    """A default title: the loss of the model's class, or the function's name (not a lambda's)."""
    if model is not None:
        return f"loss of {type(model).__name__}"
    name = getattr(fn, "__name__", "")
    return "" if name == "<lambda>" else name


def _checked(name: str, value: Any) -> Any:
    """A float for a number, an ndarray for an array; refuses anything else by name."""
    if isinstance(value, Node):
        value = value.data
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"input '{name}' is a bool; give a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"input '{name}' must be finite, got {value}")
        return number
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"input '{name}': {exc}") from None
    if array.dtype.kind not in "fiu":
        raise TypeError(f"input '{name}' must be a number or an array of numbers")
    return array


def _leaf(name: str, value: Any) -> Node:
    if isinstance(value, float):
        return Value(value, name=name)
    floating = value.dtype.kind == "f"
    return Tensor(value, requires_grad=floating, name=name)


SMALL_ARRAY = 64
"""Arrays of at most this many elements are shown (and, live, typed) as nested lists."""


def plain(value: Any) -> Any:
    """An input as JSON holds it: a number, or a small array as nested lists (None if large)."""
    if isinstance(value, float):
        return value
    return value.tolist() if value.size <= SMALL_ARRAY and value.dtype.kind == "f" else None


def _field(name: str, value: Any) -> dict:
    """An input as the page's form shows it: a number (field and slider) or an array (its
    values as a nested list when small, else its shape only)."""
    if isinstance(value, float):
        return {"name": name, "value": value, "editable": True}
    return {
        "name": name,
        "value": plain(value),
        "shape": list(value.shape),
        "editable": False,
    }


def _positional(fn: Callable, names: list[str]) -> Callable:
    """``fn`` itself when its parameters are the inputs in order (so staged code keeps its
    local names), else a wrapper taking the inputs positionally in that order."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    if params == names:
        return fn

    def positional(*args: Any) -> Any:
        return fn(**dict(zip(names, args)))

    positional.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    positional.__name__ = getattr(fn, "__name__", "f")
    return positional


def _with_parameters(fn: Callable, names: list[str], model: Any) -> tuple[Callable, list, list]:
    """``fn`` taking ``model``'s parameters as further positional inputs after ``names``, with
    their names and arrays: ``cr.stage`` differentiates only with respect to its arguments, so
    for the length of each call the traced arrays stand in for the parameters (put back after)."""
    holders: dict[int, list] = {}
    params: dict[int, tuple[str, Any]] = {}
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            params.setdefault(id(param), (full, param))
            holders.setdefault(id(param), []).append((module, name))
    order = list(params)
    taken = set(names)
    ids = []
    for key in order:
        ident = re.sub(r"\W", "_", params[key][0])
        ident = ident if ident[:1].isalpha() else f"p{ident}"
        while ident in taken:
            ident += "_"
        taken.add(ident)
        ids.append(ident)

    def with_parameters(*args: Any) -> Any:
        inputs, traced = args[: len(names)], args[len(names) :]
        try:
            for key, value in zip(order, traced):
                for module, name in holders[key]:
                    object.__setattr__(module, name, value)
            return fn(**dict(zip(names, inputs)))
        finally:
            for key in order:
                for module, name in holders[key]:
                    object.__setattr__(module, name, params[key][1])

    with_parameters.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names + ids]
    )
    with_parameters.__name__ = "loss"
    return with_parameters, ids, [params[key][1].data for key in order]


@contextmanager
def _module_calls(model: Any) -> Iterator[list[ModuleGroup]]:
    """While active, every call of one of ``model``'s innermost modules is recorded as a group
    (its output, its inputs and parameters), through forward hooks removed afterwards."""
    groups: list[ModuleGroup] = []
    if model is None:
        yield groups
        return
    seen: dict[str, int] = {}
    handles = []

    def record(name: str, module: Any, args: tuple, kwargs: dict, out: Any) -> None:
        if not isinstance(out, Node):
            return
        count = seen[name] = seen.get(name, 0) + 1
        label = name or type(module).__name__
        key = label if count == 1 else f"{label}#{count}"
        inputs = tuple(a for a in (*args, *kwargs.values()) if isinstance(a, Node))
        params = tuple(p for p in module.parameters() if p is not None)
        groups.append(
            ModuleGroup(key, f"{label}: {type(module).__name__}", out, inputs + params, set())
        )

    try:
        for name, module in model.named_modules():
            if any(True for _ in module.children()):
                continue
            hook = functools.partial(record, name)
            handles.append(module.register_forward_hook(hook, with_kwargs=True))
        yield groups
    finally:
        for handle in handles:
            handle.remove()


def _drawable(group: ModuleGroup, circuit: Any) -> bool:
    """Fill in the group's interior gates; False when it has none or it is not in the circuit
    (a module whose output the loss does not use, or one that only passes its input on)."""
    try:
        out = circuit.wire(group.output)
    except KeyError:
        return False
    if out.is_leaf or any(group.output is i for i in group.inputs):
        return False
    stop = {id(n) for n in group.inputs}
    nodes = {group.output}
    stack = [group.output]
    while stack:
        node = stack.pop()
        for inp in node.inputs:
            if id(inp) in stop or inp in nodes or inp._gate is None:
                continue
            nodes.add(inp)
            stack.append(inp)
    group.nodes = nodes
    group.inputs = tuple(i for i in group.inputs if _in(circuit, i))
    return True


def _in(circuit: Any, node: Node) -> bool:
    try:
        circuit.wire(node)
    except KeyError:
        return False
    return True
