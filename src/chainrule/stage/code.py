"""A recorded gate written as a NumPy expression: what each gate contributes to staged code.

A gate class gives ``forward_code``, one expression: a template such as ``"{0} + {1}"`` or
``"np.sum({0}, axis={axis}, keepdims={keepdims})"`` whose fields are its inputs by position and its
options by name, written as literals (``{index:subscript}`` writes an index as a subscript), or a
static method ``(site) -> str`` that builds the template for a variable number of inputs (it
calls ``site.format``). The expression may call a function of the gate's own module by name
(``"conv2d_forward({0}, {1}, stride={stride})"``): the staged module binds that function, so a
gate whose forward is a NumPy kernel stages as a call of that kernel; an option that is state
the kernel reads or updates in place (batch norm's running statistics) is written with
``site.state(array, name)``, bound by reference. A gate without ``forward_code`` (a user's gate)
stages as a call of its own ``forward``.

A random gate (dropout's mask, :mod:`chainrule.ops.random`) stages as a call of its kernel with
its ``np.random.Generator`` option bound by reference as a module constant: each call of the
staged code draws anew from that generator, continuing its stream, never replaying the traced
draw (tracing is itself a call and draws once).

Nothing here knows a derivative: a backward pass is staged as the forward code of the gates its
recorded backward is made of (see :mod:`chainrule.stage.record`).
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import string
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import _Scratch

__all__ = ["Namespace", "Site", "StageError", "gate_template", "substitute"]

_RESERVED = {"np", "None", "True", "False"}
_PLACEHOLDER = "_cr_arg{}_"


class StageError(GateError):
    """``f`` cannot be staged (a backward outside chainrule, data-dependent control flow, a bad
    input), or a staged function was called with inputs unlike the traced ones."""


def identifier(name: Any) -> str | None:
    """``name`` as the identifier Python compiles it to (NFKC-normalized: a full-width ``ｘ`` is
    ``x``), or None when it is not a valid, non-keyword identifier."""
    if not isinstance(name, str):
        return None
    name = unicodedata.normalize("NFKC", name)
    if not name.isidentifier() or keyword.iskeyword(name):
        return None
    return name


class Namespace:
    """The names of one generated module, each claimed once (after NFKC normalization, so that
    look-alikes never merge), and what the module binds: constants, kernels, input arrays."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_RESERVED)
        self.constants: dict[str, Any] = {}  # name -> constant array, kernel or generator
        self._bound: dict[int, str] = {}  # id(array, function or generator) -> its name
        self._keep: list[Any] = []  # what the ids above refer to, kept alive
        self.state: set[str] = set()  # names of arrays read and updated live (see bind_state)

    def claim(self, base: str) -> str:
        """A fresh identifier made from ``base`` (``v_<base>`` or ``v`` if it is not one)."""
        name = identifier(base)
        if name is None or name in _RESERVED:
            name = identifier(f"v_{base}") or "v"
        unique, k = name, 1
        while unique in self.taken:
            k += 1
            unique = f"{name}_{k}"
        self.taken.add(unique)
        return unique

    def bind(self, value: Any, base: str) -> str:
        """The module-level name of an array, function or generator, bound once."""
        key = id(value)
        if key not in self._bound:
            name = self.claim(base)
            self._bound[key] = name
            self.constants[name] = value
            self._keep.append(value)
        return self._bound[key]

    def bind_state(self, array: np.ndarray, base: str) -> str:
        """The module-level name of state that staged code reads and updates in place at each
        call (a module's buffer, such as batch norm's running mean): bound as the very same
        object, never a copy, so its updates land in its owner's array."""
        name = self.bind(array, base)
        self.state.add(name)
        return name

    def name_input(self, array: np.ndarray, name: str) -> None:
        """An input's traced array: an option holding it (labels) is written as the input."""
        self._bound[id(array)] = name
        self._keep.append(array)

    def known(self, name: str) -> bool:
        return name in self.taken

    # --- literals ----------------------------------------------------------------------------
    def lit(self, value: Any) -> str:
        """``value`` (a number, tuple, slice, dtype, string, array or random generator) as source
        text; arrays become module constants (or the input they are), and a
        ``np.random.Generator`` is bound by reference, the very object, so that a random gate
        draws on from its stream at each staged call."""
        if value is None or type(value) is bool or type(value) is str:
            return repr(value)
        if isinstance(value, (np.ndarray, np.generic)) and id(value) in self._bound:
            return self._bound[id(value)]
        if isinstance(value, (np.bool_, np.integer)):
            value = value.item()
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype == np.float64:
            value = float(value)
        if isinstance(value, np.floating) and value.dtype == np.float64:
            value = float(value)
        if type(value) in (int, float):
            if not math.isfinite(value):
                return "np.nan" if math.isnan(value) else ("np.inf" if value > 0 else "(-np.inf)")
            text = repr(value)
            return f"({text})" if text.startswith("-") else text
        if isinstance(value, tuple):
            items = [self.lit(v) for v in value]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(value, list):
            return "[" + ", ".join(self.lit(v) for v in value) + "]"
        if isinstance(value, slice) or value is Ellipsis:
            return "np.s_[" + self.subscript((value,)) + "]"
        if isinstance(value, (np.dtype, type)) and hasattr(np, np.dtype(value).name):
            return f"np.{np.dtype(value).name}"
        if isinstance(value, (np.ndarray, np.generic)):
            return self.bind(value, f"_c{len(self.constants)}")
        if isinstance(value, np.random.Generator):  # bound live: each call continues its stream
            return self.bind(value, "generator")
        raise StageError(f"the option {value!r} cannot be written as staged code")

    def subscript(self, index: tuple) -> str:
        """An indexing option as the inside of a subscript: ``0, 1:3, None``."""
        if not index:
            return "()"
        items = []
        for item in index:
            if isinstance(item, slice):
                parts = ["" if p is None else self.lit(p) for p in (item.start, item.stop)]
                step = "" if item.step is None else f":{self.lit(item.step)}"
                items.append(":".join(parts) + step)
            elif item is Ellipsis:
                items.append("...")
            else:
                items.append(self.lit(item))
        return ", ".join(items)


class Site:
    """One gate application as its ``forward_code`` sees it: ``args`` (the inputs' expressions),
    ``options`` (the gate's options), and :meth:`format`, which fills a template's fields."""

    def __init__(self, node: Node, namespace: Namespace) -> None:
        self.args = tuple(_PLACEHOLDER.format(i) for i in range(len(node.inputs)))
        self.options = node.options
        self._namespace = namespace

    def lit(self, value: Any) -> str:
        """``value`` written as source text."""
        return self._namespace.lit(value)

    def state(self, array: np.ndarray | None, base: str) -> str:
        """An option's array that the gate reads or updates in place when it runs (a module's
        buffer), named after ``base`` and bound by reference (``"None"`` for None)."""
        return "None" if array is None else self._namespace.bind_state(array, base)

    def format(self, template: str) -> str:
        """``template`` with ``{0}``, ``{1}``... (inputs) and each option by name filled in."""
        return _Formatter(self._namespace).vformat(template, self.args, _Options(self.options))


class _Options(Mapping):
    def __init__(self, options: dict) -> None:
        self._options = options

    def __getitem__(self, key: str) -> Any:
        return self._options[key]

    def __iter__(self):
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)


class _Formatter(string.Formatter):
    """Inputs as their expressions, options as literals, ``:subscript`` for an index."""

    def __init__(self, namespace: Namespace) -> None:
        self._namespace = namespace

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(key, int):
            return _Text(args[key])
        return kwargs[key]

    def format_field(self, value: Any, spec: str) -> str:
        if isinstance(value, _Text):
            return str(value)
        if spec == "subscript":
            return self._namespace.subscript(value if isinstance(value, tuple) else (value,))
        return self._namespace.lit(value)


class _Text(str):
    """An input's expression, inserted as it is."""


def gate_template(node: Node, namespace: Namespace) -> ast.expr:
    """The gate's forward as an expression tree over placeholders for its inputs (see
    :func:`substitute`); kernel functions it names are bound in ``namespace``."""
    gate = node._gate
    code = getattr(gate, "forward_code", None)
    site = Site(node, namespace)
    if code is None:
        fn = namespace.bind(_forward_of(gate), gate.name)
        options = "".join(f", {k}={namespace.lit(v)}" for k, v in node.options.items())
        text = f"{fn}({', '.join(site.args)}{options})"
    elif isinstance(code, str):
        text = site.format(code)
    else:
        text = code(site)
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise StageError(
            f"gate '{gate.name}': its forward_code {text!r} is not a Python expression ({err.msg})"
        ) from None
    _bind_kernels(tree, gate, namespace)
    return tree


class _Forward:
    """A gate's own forward as a function of its inputs and options (what a gate without
    ``forward_code`` stages as)."""

    def __init__(self, gate: type) -> None:
        self.gate = gate

    def __call__(self, *args: Any, **options: Any) -> Any:
        return self.gate.forward(_Scratch(), *args, **options)


@functools.cache
def _forward_of(gate: type) -> _Forward:
    return _Forward(gate)


def _bind_kernels(tree: ast.AST, gate: type, namespace: Namespace) -> None:
    """Names in a gate's code that are neither its inputs nor the module's names are functions
    of the gate's module: bind each (renamed if the name is taken) so staged code can call it."""
    module = vars(sys.modules.get(gate.__module__, object()))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name) or node.id.startswith("_cr_arg") or node.id in _RESERVED:
            continue
        fn = module.get(node.id)
        if callable(fn):
            node.id = namespace.bind(fn, node.id)
        elif not namespace.known(node.id):
            raise StageError(
                f"gate '{gate.name}': its forward_code names '{node.id}', which is not a "
                f"function of {gate.__module__}"
            )


def placeholder_index(node: ast.AST) -> int | None:
    """Which input a placeholder name stands for, else None."""
    if isinstance(node, ast.Name) and node.id.startswith("_cr_arg") and node.id.endswith("_"):
        return int(node.id[7:-1])
    return None


class _Substitute(ast.NodeTransformer):
    def __init__(self, args: list) -> None:
        self.args = args

    def visit_Name(self, node: ast.Name) -> ast.AST:
        i = placeholder_index(node)
        return node if i is None else _copy(self.args[i])


def _copy(tree: ast.AST) -> ast.AST:
    """A deep copy that keeps the dtype annotations (see :func:`annotate`)."""
    if not isinstance(tree, ast.AST):
        return tree
    new = type(tree)()
    for field, value in ast.iter_fields(tree):
        if isinstance(value, list):
            value = [_copy(v) for v in value]
        else:
            value = _copy(value)
        setattr(new, field, value)
    for note in ("cr_dtype", "cr_shape"):
        if hasattr(tree, note):
            setattr(new, note, getattr(tree, note))
    return new


def substitute(template: ast.expr, args: list) -> ast.expr:
    """The template with each input's placeholder replaced by a copy of its expression."""
    return _Substitute(args).visit(_copy(template))


def annotate(tree: ast.expr, dtype: Any) -> ast.expr:
    """Record the dtype a subexpression evaluates to (the simplifier drops ``* 1`` only where it
    cannot change a dtype)."""
    tree.cr_dtype = np.dtype(dtype)
    return tree


def parse(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body
