"""The generated function's body: statements, and array stages lowered into buffers.

Where an array stage is a NumPy ufunc expression (``(1 - s) * s * ds``) or a matrix product, it
is written as ufunc calls into a buffer allocated once at module level (``np.subtract(1, s, ds);
np.multiply(ds, s, ds); ...``), with a scratch buffer of the same shape for the second of two
compound operands. That removes the allocations a hand-written NumPy loop pays at every call.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from itertools import count

import numpy as np

from .code import Namespace
from .record import numpy_call
from .simplify import number

__all__ = ["Body"]

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


def _ufunc_call(node: ast.AST) -> str | None:
    name = numpy_call(node)
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


def fresh(node: ast.AST) -> bool:
    """Whether evaluating ``node`` makes a new array (not a view or another variable's value)."""
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
        return True
    name = numpy_call(node)
    return name is not None and name not in _VIEWS


def _lower(node: ast.AST, dest: str, scratch: Callable[[], str], out: list[str]) -> None:
    """Append to ``out`` the ufunc calls that compute ``node`` into the buffer ``dest``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        out.append(f"np.matmul({ast.unparse(node.left)}, {ast.unparse(node.right)}, {dest})")
        return
    if isinstance(node, ast.BinOp):
        name, operands = _BINARY_UFUNCS[type(node.op)], [node.left, node.right]
        if name == "power" and number(node.right) == 2:
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


class Body:
    """The generated function's lines (code and comment) and the module's buffers."""

    def __init__(self, namespace: Namespace, buffers: bool) -> None:
        self.namespace = namespace
        self.buffers_on = buffers
        self.buffers: dict[str, tuple] = {}
        self._scratch: dict[tuple, list[str]] = {}
        self.lines: list[tuple[str, str]] = []
        self._readable = ""  # the readable form of the last lowered line, for its comment

    def _buffer(self, name: str, shape: tuple, dtype: np.dtype) -> str:
        self.buffers[name] = (tuple(shape), np.dtype(dtype))
        return name

    def _scratch_pool(self, shape: tuple, dtype: np.dtype) -> Callable[[], str]:
        pool = self._scratch.setdefault((tuple(shape), np.dtype(dtype).str), [])
        used = count()

        def take() -> str:
            k = next(used)
            if k == len(pool):
                name = self.namespace.claim(f"_s{len(self.buffers)}")
                pool.append(self._buffer(name, shape, dtype))
            return pool[k]

        return take

    def _use_buffer(self, shape: tuple, dtype: np.dtype) -> bool:
        return self.buffers_on and len(shape) > 0 and np.dtype(dtype).kind == "f"

    def emit(self, code: str, comment: str = "") -> None:
        self.lines.append((code, comment))

    def comment(self, note: str) -> None:
        """Comment the last line: ``note``, then the readable form of a lowered line."""
        code, _ = self.lines[-1]
        self.lines[-1] = (code, note + (f" {self._readable}" if self._readable else ""))
        self._readable = ""

    def assign(
        self,
        name: str,
        tree: ast.AST,
        shape: tuple,
        dtype: np.dtype,
        own: bool = False,
        buffer: bool = True,
    ) -> None:
        """Emit ``name = tree`` (into a buffer where possible, unless not ``buffer``); with
        ``own``, ``name`` must not share memory with any other variable."""
        text = ast.unparse(tree)
        statements: list[str] = []
        if buffer and self._use_buffer(shape, dtype) and (_lowerable(tree) or own):
            buf = self._buffer(name, shape, dtype)
            if _lowerable(tree):
                _lower(tree, buf, self._scratch_pool(shape, dtype), statements)
            else:
                statements.append(f"np.copyto({buf}, {text})")
            self._readable = f"{name} = {text}"
        else:
            if own and not fresh(tree):
                simple = isinstance(tree, (ast.Name, ast.Attribute, ast.Call, ast.Subscript))
                text = f"{text}.copy()" if simple else f"({text}).copy()"
            statements.append(f"{name} = {text}")
            self._readable = ""
        self.emit("; ".join(statements))

    def accumulate(self, name: str, tree: ast.AST, shape: tuple, dtype: np.dtype) -> None:
        """Emit ``name += tree``."""
        text = ast.unparse(tree)
        statements: list[str] = []
        if name in self.buffers:  # a module-level buffer: `+=` would make it a local name
            if _lowerable(tree):
                take = self._scratch_pool(shape, dtype)
                operand = take()
                _lower(tree, operand, take, statements)
            else:
                operand = text
            statements.append(f"np.add({name}, {operand}, {name})")
            self._readable = f"{name} += {text}"
        else:
            statements.append(f"{name} += {text}")
            self._readable = ""
        self.emit("; ".join(statements))
