"""Staged backprop as code: ``cr.stage(f, *example_inputs)`` writes ``f``'s forward and backward
passes as straight-line NumPy, one line per stage, and compiles that source once.

The notes' practical advice is to break the forward pass into simple stages and to write the
backward pass as the same stages in reverse, ``dvar`` by ``dvar``, with ``+=`` where a value forks.
This module does exactly that from a trace of ``f``: each gate describes its own code, nothing
here knows a derivative. A gate class says, read through a :class:`Site`:

- ``forward_code``: its output as a NumPy expression, a template such as ``"{0} + {1}"`` or a
  static method ``(site) -> str``; a tuple ends with the expression after helper statements;
- ``backward_code``: one gradient expression per input (``"{1} * {g}"``, ``{g}`` the upstream
  gradient, ``{out}`` the output), or a static method returning that tuple;
- optionally ``stage_name`` (``"sig{0}"``: how to name its output), ``elementwise = True`` (its
  rules accept a folded constant gradient) and ``staged_as(*inputs, **options)`` (the simpler
  gates it is staged as: the notes stage ``x / y`` as ``x * (1 / y)``).
 Gradients nobody asked for are not emitted, a seed of 1 is folded
away, and array stages write into buffers allocated once (``np.multiply(a, b, out)``), so a staged
function runs without the engine's per-gate bookkeeping and without per-call allocations.

Limits (documented in :func:`stage`): the code is specialised to the traced shapes and dtypes
(other shapes raise :class:`StageError`, no retracing); Python control flow in ``f`` is frozen at
trace time, so comparing or converting a traced tensor while tracing raises a ``GateError``; gates
without code (a user's custom gate) are refused with their name; a staged function with buffers
runs one call at a time (not reentrant, not thread-safe).
"""

from __future__ import annotations

import ast
import inspect
import keyword
import linecache
import math
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from itertools import count
from typing import Any

import numpy as np

from .engine import GateError, Node, enable_grad
from .tensor import Tensor

__all__ = ["Site", "StageError", "Staged", "stage"]

_MAX_DERIVED_NAME = 8  # gate-derived names ("sigy", "xpysqr") longer than this become t<k>
_RESERVED = {"np", "None", "True", "False"}


class StageError(GateError):
    """``f`` cannot be staged (a gate without code, data-dependent control flow, a bad input), or a
    staged function was called with inputs unlike the traced ones."""


# --- names -------------------------------------------------------------------------------------
class _Names:
    """The identifiers of one generated module, each claimed once."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_RESERVED)

    @staticmethod
    def valid(name: Any) -> bool:
        return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)

    def claim(self, base: str) -> str:
        if not self.valid(base) or base in _RESERVED:
            base = f"v_{base}" if self.valid(f"v_{base}") else "v"
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


# --- the view a gate's code template gets ------------------------------------------------------
class Site:
    """One gate application as seen by its code templates.

    ``args`` are the inputs' expressions, ``out`` the output's variable, ``g`` the upstream
    gradient (backward only), ``options`` the gate's raw options, ``shapes``/``dtypes`` the
    inputs', ``out_shape``/``out_dtype`` the output's. :meth:`format` fills a template's fields:
    ``{0}``, ``{1}``... (inputs), ``{out}``, ``{g}``, ``{s0}``... (input shapes), ``{h0}``...
    (fresh helper variables) and each option by name, written as a literal by :meth:`lit`.
    """

    def __init__(self, writer: _Writer, node: Node, args: tuple, out: str, g: str = "") -> None:
        self._writer = writer
        self.args = args
        self.out = out
        self.g = g
        self.options = node.options
        self.shapes = tuple(np.shape(i.data) for i in node.inputs)
        self.dtypes = tuple(np.asarray(i.data).dtype for i in node.inputs)
        self.out_shape = np.shape(node.data)
        self.out_dtype = np.asarray(node.data).dtype
        self._helpers: dict[str, str] = {}

    def lit(self, value: Any) -> str:
        """``value`` (a number, tuple, dtype or array option) as source text."""
        return self._writer.lit(value)

    def index(self, index: tuple) -> str:
        """An indexing option as a subscript: ``[0, 1:3, None]``."""
        return self._writer.subscript(index)

    def format(self, template: str) -> str:
        """``template`` with its fields filled (see the class docstring)."""
        return string.Formatter().vformat(template, self.args, _Fields(self))

    def helper(self, key: str) -> str:
        if key not in self._helpers:
            self._helpers[key] = self._writer.names.claim(f"{self.out}_{key[1:]}")
        return self._helpers[key]


class _Fields(Mapping):
    """The named fields of a template, computed when a template asks for them."""

    def __init__(self, site: Site) -> None:
        self._site = site

    def __getitem__(self, key: str) -> str:
        site = self._site
        if key == "out":
            return site.out
        if key == "g":
            return site.g
        if key in site.options:
            return site.lit(site.options[key])
        if key[:1] == "s" and key[1:].isdigit():
            return repr(tuple(site.shapes[int(key[1:])]))
        if key[:1] == "h" and key[1:].isdigit():
            return site.helper(key)
        raise KeyError(key)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def _code(gate: type, attr: str, site: Site) -> Any:
    code = getattr(gate, attr, None)
    if code is None:
        raise StageError(
            f"gate '{gate.name}' ({gate.__module__}.{gate.__qualname__}) has no staged code: give "
            f"the class a {attr} (a template string or a static method taking a Site); see "
            "chainrule.stage"
        )
    if isinstance(code, str):
        return site.format(code)
    if isinstance(code, tuple):
        return tuple(None if c is None else site.format(c) for c in code)
    return code(site)


def _split(code: Any) -> tuple[tuple, str]:
    """A gate's code: either an expression, or statements followed by the expression."""
    if isinstance(code, tuple):
        return tuple(code[:-1]), code[-1]
    return (), code


# --- expressions: folding constants and writing into buffers ------------------------------------
def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = node.operand
        if isinstance(inner, ast.Constant) and type(inner.value) in (int, float):
            return -inner.value
    return None


def _constant(value: float) -> ast.AST:
    if value < 0 or (value == 0 and math.copysign(1, value) < 0):
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _boolish(node: ast.AST) -> bool:
    return (
        isinstance(node, (ast.Compare, ast.BoolOp))
        or (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)))
        or (
            isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.BitXor))
        )
    )


_FOLD = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


class _Simplify(ast.NodeTransformer):
    """Folds constants (``2 - 1``), drops multiplications by 1 (a folded seed), ``x ** 1`` and
    double negation, and writes ``x + -c`` as ``x - c``."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        a, b = _number(node.left), _number(node.right)
        op = type(node.op)
        if a is not None and b is not None and op in _FOLD:
            try:
                value = _FOLD[op](a, b)
            except (ArithmeticError, ValueError):
                return node
            if isinstance(value, (int, float)) and math.isfinite(value):
                return _constant(value)
            return node
        if op is ast.Mult and a == 1 and not _boolish(node.right):
            return node.right
        if op in (ast.Mult, ast.Div, ast.Pow) and b == 1 and not _boolish(node.left):
            return node.left
        if op in (ast.Add, ast.Sub) and b is not None and b < 0:
            flipped = ast.Sub() if op is ast.Add else ast.Add()
            return ast.BinOp(node.left, flipped, ast.Constant(-b))
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        inner = node.operand
        if isinstance(node.op, ast.USub):
            if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub):
                return inner.operand
            value = _number(inner)
            if value is not None:
                return _constant(-value)
        return node


def _simplify(expr: str) -> ast.AST:
    return _Simplify().visit(ast.parse(expr, mode="eval").body)


_BINARY_UFUNCS = {
    ast.Add: "add",
    ast.Sub: "subtract",
    ast.Mult: "multiply",
    ast.Div: "divide",
    ast.Pow: "power",
}
_COMPARE_UFUNCS = {
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
}
_OUT_KEYWORD = {"maximum", "minimum"}  # NumPy deprecates their positional out
_VIEWS = {"broadcast_to", "reshape", "transpose", "expand_dims", "swapaxes", "squeeze"}


def _np_call(node: ast.AST) -> str | None:
    """The NumPy function name of a call ``np.name(...)``, else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "np"
    ):
        return node.func.attr
    return None


def _ufunc_call(node: ast.AST) -> str | None:
    name = _np_call(node)
    if name is None or node.keywords:
        return None
    fn = getattr(np, name, None)
    if isinstance(fn, np.ufunc) and fn.nout == 1 and len(node.args) == fn.nin:
        return name
    return None


def _elementwise(node: ast.AST) -> bool:
    """Whether ``node`` is a NumPy ufunc application that can write into a buffer."""
    if isinstance(node, ast.BinOp):
        return type(node.op) in _BINARY_UFUNCS
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub)
    if isinstance(node, ast.Compare):
        return len(node.ops) == 1 and type(node.ops[0]) in _COMPARE_UFUNCS
    return _ufunc_call(node) is not None


def _lowerable(node: ast.AST) -> bool:
    return _elementwise(node) or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult))


def _fresh(node: ast.AST) -> bool:
    """Whether evaluating ``node`` makes a new array (not a view or another variable's value)."""
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
        return True
    name = _np_call(node)
    return name is not None and name not in _VIEWS


def _lower(node: ast.AST, dest: str, scratch: Callable[[], str], out: list[str]) -> None:
    """Append to ``out`` the ufunc calls that compute ``node`` into the buffer ``dest``.

    Each operation writes into ``dest`` (or a scratch buffer of the same shape for the second
    of two compound operands); subexpressions that are not ufuncs are evaluated as written.
    """
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        out.append(f"np.matmul({ast.unparse(node.left)}, {ast.unparse(node.right)}, {dest})")
        return
    if isinstance(node, ast.BinOp):
        name, operands = _BINARY_UFUNCS[type(node.op)], [node.left, node.right]
        if name == "power" and _number(node.right) == 2:
            name, operands = "square", [node.left]
    elif isinstance(node, ast.UnaryOp):
        name, operands = "negative", [node.operand]
    elif isinstance(node, ast.Compare):
        name, operands = _COMPARE_UFUNCS[type(node.ops[0])], [node.left, node.comparators[0]]
    else:
        name, operands = _ufunc_call(node), list(node.args)
    texts, dest_used = [], False
    for operand in operands:
        if _elementwise(operand):
            target = scratch() if dest_used else dest
            _lower(operand, target, scratch, out)
            dest_used = True
            texts.append(target)
        else:
            texts.append(ast.unparse(operand))
    out_arg = f"out={dest}" if name in _OUT_KEYWORD else dest
    out.append(f"np.{name}({', '.join(texts)}, {out_arg})")


# --- the generated module -----------------------------------------------------------------------
class _Writer:
    """Collects the generated module: names, constants, buffers and lines."""

    def __init__(self, buffers: bool, input_data: dict[int, str]) -> None:
        self.names = _Names()
        self.buffers_on = buffers
        self.buffers: dict[str, tuple] = {}
        self.constants: dict[str, Any] = {}
        self._constant_ids: dict[int, str] = {}
        self._input_data = input_data
        self._scratch: dict[tuple, list[str]] = {}
        self.lines: list[tuple[str, str]] = []
        self.folded: set[int] = set()  # gradients known to be one number everywhere
        self._pending = ""  # the readable form of the last buffered line, for its comment

    # constants
    def lit(self, value: Any) -> str:
        if value is None or type(value) is bool:
            return repr(value)
        if isinstance(value, np.ndarray) and id(value) in self._input_data:
            return self._input_data[id(value)]
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
            return "np.s_" + self.subscript((value,))
        if isinstance(value, (np.dtype, type)) and hasattr(np, np.dtype(value).name):
            return f"np.{np.dtype(value).name}"
        if isinstance(value, (np.ndarray, np.generic)):
            key = id(value)
            if key not in self._constant_ids:
                name = self.names.claim(f"_c{len(self.constants)}")
                self._constant_ids[key] = name
                self.constants[name] = value
            return self._constant_ids[key]
        raise StageError(f"the option {value!r} cannot be written as staged code")

    def subscript(self, index: tuple) -> str:
        if not index:
            return "[()]"
        items = []
        for item in index:
            if isinstance(item, slice):
                parts = ["" if p is None else self.lit(p) for p in (item.start, item.stop)]
                text = ":".join(parts) + ("" if item.step is None else f":{self.lit(item.step)}")
                items.append(text)
            elif item is Ellipsis:
                items.append("...")
            else:
                items.append(self.lit(item))
        return "[" + ", ".join(items) + "]"

    # buffers
    def buffer(self, name: str, shape: tuple, dtype: np.dtype) -> str:
        self.buffers[name] = (tuple(shape), np.dtype(dtype))
        return name

    def scratch_pool(self, shape: tuple, dtype: np.dtype) -> Callable[[], str]:
        pool = self._scratch.setdefault((tuple(shape), np.dtype(dtype).str), [])
        used = count()

        def take() -> str:
            k = next(used)
            if k == len(pool):
                pool.append(self.buffer(self.names.claim(f"_s{len(self.buffers)}"), shape, dtype))
            return pool[k]

        return take

    def use_buffer(self, shape: tuple, dtype: np.dtype) -> bool:
        return self.buffers_on and len(shape) > 0 and np.dtype(dtype).kind == "f"

    def emit(self, code: str, comment: str = "") -> None:
        self.lines.append((code, comment))

    def assign(
        self,
        name: str,
        tree: ast.AST,
        shape: tuple,
        dtype: np.dtype,
        helpers: tuple = (),
        own: bool = False,
    ) -> None:
        """Emit ``name = tree`` (into a buffer where possible); with ``own``, ``name`` must not
        share memory with any other variable."""
        comment_expr = ast.unparse(tree)
        statements = list(helpers)
        if self.use_buffer(shape, dtype) and (_lowerable(tree) or own):
            buf = self.buffer(name, shape, dtype)
            if _lowerable(tree):
                _lower(tree, buf, self.scratch_pool(shape, dtype), statements)
            else:
                statements.append(f"np.copyto({buf}, {comment_expr})")
            self._pending = f"{name} = {comment_expr}"
        else:
            expr = comment_expr
            if own and not _fresh(tree):
                simple = isinstance(tree, (ast.Name, ast.Attribute, ast.Call, ast.Subscript))
                expr = f"{expr}.copy()" if simple else f"({expr}).copy()"
            statements.append(f"{name} = {expr}")
            self._pending = ""
        self.emit("; ".join(statements))

    def accumulate(
        self, name: str, tree: ast.AST, shape: tuple, dtype: np.dtype, helpers: tuple = ()
    ) -> None:
        """Emit ``name += tree``."""
        statements = list(helpers)
        text = ast.unparse(tree)
        if name in self.buffers:  # a module-level buffer: `+=` would make it a local name
            if _lowerable(tree):
                take = self.scratch_pool(shape, dtype)
                text = take()
                _lower(tree, text, take, statements)
            statements.append(f"np.add({name}, {text}, {name})")
            self._pending = f"{name} += {ast.unparse(tree)}"
        else:
            statements.append(f"{name} += {text}")
            self._pending = ""
        self.emit("; ".join(statements))


class _Var:
    """A value of the staged program: an input, a constant or a stage's output."""

    __slots__ = ("node", "name", "stage", "needs")

    def __init__(self, node: Node, name: str, stage: int, needs: bool) -> None:
        self.node, self.name, self.stage, self.needs = node, name, stage, needs


# --- tracing -----------------------------------------------------------------------------------
def _call_recording_locals(f: Callable, args: list) -> tuple[Any, dict[int, str]]:
    """Call ``f`` and return its result with the names of its local variables (by object id),
    read from its frame as it returns, so that stages take the user's own names."""
    code = getattr(f, "__code__", None)
    frame_locals: dict[str, Any] = {}
    if code is None:
        return f(*args), {}

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            frame_locals.clear()
            frame_locals.update(frame.f_locals)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        out = f(*args)
    finally:
        sys.setprofile(previous)
    names: dict[int, str] = {}
    for name, value in frame_locals.items():
        if isinstance(value, Node) and id(value) not in names:
            names[id(value)] = name
    return out, names


def _parameter_names(f: Callable, n: int) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
    return names + [f"x{i}" for i in range(len(names), n)]


def _trace(f: Callable, inputs: list[Tensor]) -> tuple[Tensor, dict[int, str]]:
    previous = Tensor._staging
    Tensor._staging = True
    try:
        with enable_grad():
            out, local_names = _call_recording_locals(f, inputs)
    finally:
        Tensor._staging = previous
    if not isinstance(out, Tensor):
        raise StageError(
            f"stage: f must return a Tensor computed from its inputs, got {type(out).__name__}"
        )
    if out.size != 1:
        raise StageError(
            f"stage: f must return a single number (like grad), got a tensor of shape {out.shape}"
        )
    return out, local_names


def _order(out: Node, inputs: set) -> tuple[list[Node], dict[int, Node]]:
    """The circuit's nodes in evaluation order (each gate's inputs first, in argument order, as
    the notes write stages), and the gates replaced by the gates they are ``staged_as``."""
    order: list[Node] = []
    aliases: dict[int, Node] = {}
    done: set[int] = set()
    stack: list[tuple[Node, bool]] = [(out, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if key in done:
            continue
        gate = node._gate
        if expanded or gate is None or key in inputs:
            done.add(key)
            order.append(node)
            continue
        stack.append((node, True))
        staged_as = getattr(gate, "staged_as", None)
        if staged_as is not None:
            with enable_grad():
                aliases[key] = staged_as(*node.inputs, **node.options)
            stack.append((aliases[key], False))
            continue
        for inp in reversed(node.inputs):
            if id(inp) not in done:
                stack.append((inp, False))
    return order, aliases


# --- the staged function -----------------------------------------------------------------------
class Staged:
    """A function staged by :func:`stage`: call it with inputs of the traced shapes and dtypes
    to get ``(value, gradients)``; ``source`` is the code it runs."""

    def __init__(
        self,
        fn: Callable,
        source: str,
        names: Sequence[str],
        shapes: Sequence[tuple],
        dtypes: Sequence[np.dtype],
        wrt: tuple,
        single: bool,
    ) -> None:
        self._fn = fn
        self.source = source
        self.names = tuple(names)
        self.shapes = tuple(shapes)
        self.dtypes = tuple(dtypes)
        self.wrt = wrt[0] if single else wrt
        self._spec = tuple(zip(self.shapes, self.dtypes))

    def __call__(self, *inputs: Any) -> tuple:
        """``(value, gradients)`` at ``inputs``: one gradient per ``wrt`` position (a tuple), or
        a single gradient when ``wrt`` was one int. Returned arrays are the staged function's
        own buffers, overwritten by its next call (copy them to keep them)."""
        if len(inputs) != len(self._spec):
            raise StageError(
                f"staged function takes {len(self._spec)} input(s) ({', '.join(self.names)}), "
                f"got {len(inputs)}"
            )
        args = list(inputs)
        for i, (a, (shape, dtype)) in enumerate(zip(inputs, self._spec)):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                args[i] = self._check(i, a)
        return self._fn(*args)

    def _check(self, i: int, value: Any) -> np.ndarray:
        shape, dtype = self._spec[i]
        array = np.asarray(value.data if isinstance(value, Node) else value)
        if array.dtype.kind in "iub" and dtype.kind == "f" and array.shape == shape:
            array = array.astype(dtype)
        if array.shape != shape:
            raise StageError(
                f"staged input '{self.names[i]}' has shape {array.shape} but f was traced with "
                f"shape {shape}; stage f again for new shapes"
            )
        if array.dtype != dtype:
            raise StageError(
                f"staged input '{self.names[i]}' has dtype {array.dtype} but f was traced with "
                f"{dtype}; stage f again (or convert the input)"
            )
        return array

    def __repr__(self) -> str:
        spec = ", ".join(
            f"{n}: {d}{list(s)}" for n, s, d in zip(self.names, self.shapes, self.dtypes)
        )
        return f"<staged function ({spec}), wrt={self.wrt!r}>"


def stage(
    f: Callable, *example_inputs: Any, wrt: int | Sequence[int] = 0, buffers: bool | None = None
) -> Staged:
    """Trace ``f`` once at ``example_inputs`` and return it as staged NumPy code.

    The result is called like ``f`` and returns ``(value, gradients)`` with respect to the
    inputs at positions ``wrt`` (a tuple of gradients, or one gradient for an int ``wrt``).
    ``f`` takes arrays (as Tensors) and returns a single-number Tensor, like :func:`grad`.
    ``staged.source`` is the generated code: forward stages then backward stages, named after
    ``f``'s own variables, each backward line commented with the forward stage it differentiates.

    ``buffers`` (default: on for arrays) makes array stages write into buffers allocated once,
    with ``out=``; the returned arrays are then those buffers, overwritten by the next call.

    Limits: the code is specialised to the example shapes and dtypes (other inputs raise
    :class:`StageError`: stage again); Python control flow in ``f`` is fixed at trace time, and
    comparing, converting or testing a traced tensor while tracing raises :class:`StageError`;
    values computed from integer inputs outside the circuit are frozen; every gate must have
    staged code (a custom gate without ``forward_code``/``backward_code`` is refused by name).
    """
    single = isinstance(wrt, (int, np.integer))
    positions = (int(wrt),) if single else tuple(int(w) for w in wrt)
    n = len(example_inputs)
    for w in positions:
        if not -n <= w < n:
            raise StageError(f"stage: wrt position {w} is out of range for {n} input(s)")
    positions = tuple(w % n for w in positions)
    if len(set(positions)) != len(positions):
        raise StageError(f"stage: repeated position in wrt={wrt!r}")
    names = _parameter_names(f, n)
    inputs = []
    for i, value in enumerate(example_inputs):
        if isinstance(value, Node) and value.name and _Names.valid(value.name):
            names[i] = value.name
        array = np.asarray(value.data if isinstance(value, Node) else value)
        if array.dtype.kind not in "fiub":
            raise StageError(f"stage: input '{names[i]}' has unsupported dtype {array.dtype}")
        if i in positions and array.dtype.kind != "f":
            raise StageError(
                f"stage: input '{names[i]}' (wrt position {i}) has dtype {array.dtype}; only "
                "floating inputs have gradients"
            )
        inputs.append(Tensor(array, requires_grad=array.dtype.kind == "f"))
    out, local_names = _trace(f, inputs)
    fname = getattr(f, "__name__", "")
    fname = fname if _Names.valid(fname) else "f"
    if buffers is None:
        buffers = True
    return _generate(fname, inputs, names, positions, single, out, local_names, buffers)


def _generate(
    fname: str,
    inputs: list[Tensor],
    names: list[str],
    positions: tuple,
    single: bool,
    out: Tensor,
    local_names: dict[int, str],
    buffers: bool,
) -> Staged:
    input_ids = {id(t): i for i, t in enumerate(inputs)}
    writer = _Writer(buffers, {})
    arg_names = [writer.names.claim(nm) for nm in names]
    writer._input_data = {id(t.data): arg_names[i] for i, t in enumerate(inputs)}
    func_name = writer.names.claim(f"{fname}_staged")
    order, aliases = _order(out, set(input_ids))
    hints = dict(local_names)
    for key, replacement in aliases.items():  # a replacement takes the name of what it replaces
        if key in hints:
            hints.setdefault(id(replacement), hints[key])

    variables: dict[int, _Var] = {}
    stages: list[_Var] = []
    for node in order:
        key = id(node)
        if key in aliases:
            variables[key] = variables[id(aliases[key])]
        elif key in input_ids:
            i = input_ids[key]
            variables[key] = _Var(node, arg_names[i], 0, i in positions)
        elif node._gate is None:
            if node.requires_grad:
                raise StageError(
                    f"stage: f uses a tensor of shape {np.shape(node.data)} that requires grad but "
                    "is not one of its inputs; pass it as an argument (and list it in wrt) or "
                    "detach it"
                )
            variables[key] = _Var(node, writer.lit(node.data), 0, False)
        else:
            var = _Var(node, "", len(stages) + 1, False)
            var.needs = any(variables[id(i)].needs for i in node.inputs)
            stages.append(var)
            variables[key] = var
    root = variables[id(out)]

    # names: the user's where known, the output after f, then gate-derived names, else t<k>
    for var in stages:
        user = hints.get(id(var.node), "") or var.node.name or ""
        if var is root and not user:
            user = fname if fname not in arg_names else "out"
        if user and _Names.valid(user):
            var.name = writer.names.claim(user)
    for var in stages:
        if var.name:
            continue
        derived = _derived_name(writer, var, variables)
        var.name = writer.names.claim(derived or f"t{var.stage}")

    readable: dict[int, str] = {}
    writer.emit("# forward pass")
    for var in stages:
        node = var.node
        args = tuple(variables[id(i)].name for i in node.inputs)
        site = Site(writer, node, args, var.name)
        helpers, expr = _split(_code(node._gate, "forward_code", site))
        tree = _simplify(expr)
        readable[var.stage] = f"{var.name} = {ast.unparse(tree)}"
        writer.assign(var.name, tree, np.shape(node.data), np.asarray(node.data).dtype, helpers)
        _comment(writer, var.stage)

    grads: dict[int, str] = {}
    totals: dict[int, int] = {}
    for var in stages:
        if var.needs:
            for inp in var.node.inputs:
                target = variables[id(inp)]
                if target.needs:
                    totals[id(target.node)] = totals.get(id(target.node), 0) + 1
    wrt_ids = {id(inputs[p]) for p in positions}
    wanted = [id(inputs[p]) for p in positions]
    if root.needs:
        writer.emit(
            f"# backward pass: d<name> is the gradient of {root.name} with respect to <name>"
        )
        seed = id(root.node)
        if root.stage and np.ndim(out.data) == 0:
            grads[seed] = "1.0"  # the seed, folded into the first backward stage
        else:
            totals[seed] = totals.get(seed, 0) + 1
            _contribute(writer, grads, totals, wrt_ids, root, _ones(writer, out), (), 0)
        for var in reversed(stages):
            if not var.needs:
                continue
            node = var.node
            writer.emit(f"# backprop {readable[var.stage]}")
            args = tuple(variables[id(i)].name for i in node.inputs)
            g = grads[id(node)]
            if (
                id(node) in writer.folded
                and np.ndim(node.data) > 0
                and not getattr(node._gate, "elementwise", False)
            ):
                g = writer.names.claim(f"d{var.name}")  # a number, where a rule needs an array
                writer.emit(f"{g} = np.broadcast_to({grads[id(node)]}, {np.shape(node.data)!r})")
                _comment(writer, var.stage)
            site = Site(writer, node, args, var.name, g)
            codes = _code(node._gate, "backward_code", site)
            for inp, code in zip(node.inputs, codes):
                target = variables[id(inp)]
                if not target.needs or code is None:
                    continue
                helpers, expr = _split(code)
                _contribute(writer, grads, totals, wrt_ids, target, expr, helpers, var.stage)
    results = []
    for position, key in zip(positions, wanted):
        if key not in grads:
            name = writer.names.claim(f"d{arg_names[position]}")
            data = inputs[position].data
            suffix = "" if data.dtype == np.float64 else f", {writer.lit(data.dtype)}"
            writer.emit(f"{name} = np.zeros({np.shape(data)!r}{suffix})")
            _comment(writer, 0, f"{root.name} does not depend on {arg_names[position]}")
            grads[key] = name
        results.append(grads[key])
    grads_text = (
        results[0]
        if single
        else "(" + ", ".join(results) + ("," if len(results) == 1 else "") + ")"
    )
    writer.emit(f"return {root.name}, {grads_text}")
    source = _render(writer, func_name, fname, arg_names, inputs)
    fn = _compile(source, func_name, writer)
    shapes = [np.shape(t.data) for t in inputs]
    dtypes = [t.data.dtype for t in inputs]
    return Staged(fn, source, arg_names, shapes, dtypes, positions, single)


def _derived_name(writer: _Writer, var: _Var, variables: dict) -> str:
    gate = var.node._gate
    template = getattr(gate, "stage_name", None)
    if template is None:
        return ""
    args = tuple(variables[id(i)].name for i in var.node.inputs)
    if any(not _Names.valid(a) for a in args):
        return ""
    site = Site(writer, var.node, args, "")
    name = template(site) if callable(template) else site.format(template)
    if not name or len(name) > _MAX_DERIVED_NAME or not _Names.valid(name):
        return ""
    return name


def _ones(writer: _Writer, out: Tensor) -> str:
    dtype = out.data.dtype
    suffix = "" if dtype == np.float64 else f", {writer.lit(dtype)}"
    return f"np.ones({np.shape(out.data)!r}{suffix})"


def _comment(writer: _Writer, stage_number: int, text: str = "") -> None:
    code, _ = writer.lines[-1]
    pending = getattr(writer, "_pending", "")
    note = text or (f"({stage_number})" + (f" {pending}" if pending else ""))
    writer.lines[-1] = (code, note)
    writer._pending = ""


def _fill(tree: ast.AST) -> ast.AST | None:
    """The number a gradient expression fills its whole shape with, if it is one."""
    if _number(tree) is not None:
        return tree
    name = _np_call(tree)
    if name == "broadcast_to" and len(tree.args) == 2 and _number(tree.args[0]) is not None:
        return tree.args[0]
    if name == "full" and len(tree.args) >= 2 and _number(tree.args[1]) is not None:
        return tree.args[1]
    return None


def _contribute(
    writer: _Writer,
    grads: dict,
    totals: dict,
    wrt_ids: set,
    target: _Var,
    expr: str,
    helpers: tuple,
    stage_number: int,
) -> None:
    """Emit one gradient contribution into ``target``'s gradient: ``d = ...`` the first time,
    ``d += ...`` after (owning its memory first when more will be added or it is returned)."""
    node = target.node
    key = id(node)
    shape, dtype = np.shape(node.data), np.asarray(node.data).dtype
    tree = _simplify(expr)
    fill = _fill(tree)
    if (
        fill is not None
        and key not in grads
        and totals.get(key, 0) == 1
        and key not in wrt_ids
        and target.stage
    ):
        grads[key] = ast.unparse(fill)  # the same number everywhere: fold it into the rules
        writer.folded.add(key)
        writer.emit(f"# the gradient on {target.name} is {grads[key]} everywhere: folded below")
        return
    if _number(tree) is not None:  # a constant (a folded seed): give it the variable's shape
        suffix = "" if dtype == np.float64 else f", {writer.lit(dtype)}"
        tree = _simplify(f"np.full({shape!r}, {ast.unparse(tree)}{suffix})")
    if key in grads:
        writer.accumulate(grads[key], tree, shape, dtype, helpers)
    else:
        name = writer.names.claim(f"d{target.name}")
        own = totals.get(key, 0) > 1 or key in wrt_ids
        writer.assign(name, tree, shape, dtype, helpers, own=own)
        grads[key] = name
    _comment(writer, stage_number)


def _render(writer: _Writer, func_name: str, fname: str, arg_names: list, inputs: list) -> str:
    spec = ", ".join(f"{n}: {t.data.dtype}{list(t.data.shape)}" for n, t in zip(arg_names, inputs))
    lines = [f"# {fname} staged by chainrule at {spec}"]
    if writer.constants:
        for name, value in writer.constants.items():
            lines.append(
                f"# {name}: a constant {np.asarray(value).dtype} array of shape "
                f"{np.shape(value)} from the trace"
            )
    for name, (shape, dtype) in writer.buffers.items():
        suffix = "" if dtype == np.float64 else f", np.{dtype.name}"
        lines.append(f"{name} = np.empty({shape!r}{suffix})")
    lines.append(f"def {func_name}({', '.join(arg_names)}):")
    body = [("    " + code, note) for code, note in writer.lines]
    width = min(max((len(c) for c, note in body if note), default=0), 60)
    for code, note in body:
        lines.append(f"{code.ljust(width)}  # {note}" if note else code)
    return "\n".join(lines) + "\n"


_compiled = count()


def _compile(source: str, func_name: str, writer: _Writer) -> Callable:
    """Compile the generated module once, in a namespace of NumPy and the trace's constants."""
    filename = f"<chainrule.stage {func_name} #{next(_compiled)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"np": np, "__builtins__": {}}
    namespace.update(writer.constants)
    exec(compile(source, filename, "exec"), namespace)  # generated from the trace, not user text
    return namespace[func_name]
