"""A safe parser for the arithmetic expressions of ``chainrule explain``.

The text is parsed with Python's ``ast`` and checked against a whitelist (numbers, names,
``+ - * / **``, unary minus, parentheses, and the functions below); anything else is refused with
an :class:`ExpressionError` that names the 1-based column. Nothing is ever ``eval``-ed: a checked
expression is kept as a postfix program of chainrule operations and run on the values given to
:meth:`Expression.build`, so it builds a circuit of Values or of Tensors alike.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import ops
from .engine import Node
from .value import Value

__all__ = ["FUNCTIONS", "MAX_LENGTH", "Expression", "ExpressionError", "parse"]

MAX_LENGTH = 2000
"""The longest expression text accepted, in characters."""

_UNARY: dict[str, Callable[[Any], Any]] = {
    "exp": ops.exp,
    "log": ops.log,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "abs": ops.absolute,
    "sqrt": ops.sqrt,
}
_VARIADIC: dict[str, Callable[[Any, Any], Any]] = {"max": ops.maximum, "min": ops.minimum}

FUNCTIONS: tuple[str, ...] = tuple(sorted((*_UNARY, *_VARIADIC)))
"""The function names an expression may call."""

_BINARY: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.Pow: ("**", lambda a, b: a**b),
}
_REFUSED_OPERATORS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Invert: "~",
    ast.Not: "not",
}
_REFUSED = {
    ast.Attribute: "attribute access is",
    ast.Subscript: "subscripts are",
    ast.Lambda: "lambdas are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.Compare: "comparisons are",
    ast.BoolOp: "'and'/'or' are",
    ast.IfExp: "conditional expressions are",
    ast.Tuple: "tuples are",
    ast.List: "lists are",
    ast.Dict: "dicts are",
    ast.Set: "sets are",
    ast.NamedExpr: "assignment expressions are",
    ast.Starred: "starred arguments are",
    ast.JoinedStr: "strings are",
    ast.Await: "await is",
    ast.Slice: "slices are",
}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or built; ``position`` is the 1-based column."""

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = max(1, int(position))
        super().__init__(f"column {self.position}: {message}")


class Expression:
    """A checked arithmetic expression: its text, its variable names (in order of first
    appearance) and :meth:`build`, which makes its circuit from given values."""

    __slots__ = ("text", "names", "_program")

    def __init__(self, text: str, names: tuple[str, ...], program: tuple) -> None:
        self.text = text
        self.names = names
        self._program = program

    def build(self, values: Mapping[str, Any]) -> Node:
        """The expression's circuit over ``values`` (name -> Value, Tensor or number), built with
        chainrule's gates; numbers in the text are constants. Its output is always a node."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ExpressionError(
                f"no value given for '{missing[0]}'", self._first_position(missing[0])
            )
        stack: list[Any] = []
        for op, arg, position in self._program:
            try:
                stack.append(_run(op, arg, stack, values))
            except ExpressionError:
                raise
            except (ArithmeticError, ValueError, TypeError) as exc:
                raise ExpressionError(_what(op, arg) + f": {exc}", position) from None
        (result,) = stack
        if isinstance(result, Node):
            return result
        front = next((v for v in values.values() if isinstance(v, Node)), None)
        return front._constant(result) if front is not None else Value(result, requires_grad=False)

    def _first_position(self, name: str) -> int:
        return next(p for op, arg, p in self._program if op == "name" and arg == name)

    def __repr__(self) -> str:
        return f"Expression({self.text!r}, names={self.names!r})"


def _what(op: str, arg: Any) -> str:
    if op == "call":
        return f"{arg[0]}()"
    if op == "binary":
        return f"operator {_BINARY[arg][0]}"
    return "unary -" if op == "neg" else "value"


def _run(op: str, arg: Any, stack: list, values: Mapping[str, Any]) -> Any:
    """One postfix instruction: push a number or a value, or apply an operation to the top."""
    if op == "number":
        return arg
    if op == "name":
        value = values[arg]
        if isinstance(value, Node):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(
            f"the value of '{arg}' must be a Value, Tensor or number, got {type(value).__name__}"
        )
    if op == "neg":
        return -stack.pop()
    if op == "pos":
        return stack.pop()
    if op == "binary":
        right, left = stack.pop(), stack.pop()
        result = _BINARY[arg][1](left, right)
        if isinstance(result, complex):
            raise ValueError(f"{left!r} ** {right!r} is not a real number")
        return result
    name, count = arg
    args = stack[-count:]
    del stack[-count:]
    if name in _UNARY:
        return _UNARY[name](args[0])
    result = args[0]
    for other in args[1:]:
        result = _VARIADIC[name](result, other)
    return result


def _column(source: str, shift: int, node: ast.AST) -> int:
    """The 1-based character column of ``node`` in the original (unstripped) text."""
    offset = getattr(node, "col_offset", 0)
    return shift + len(source.encode("utf-8")[:offset].decode("utf-8", "replace")) + 1


def parse(text: str) -> Expression:
    """Parse and check ``text``; raises :class:`ExpressionError` (with a column) for anything
    outside the whitelist, for syntax errors, and for text too long or nested too deeply."""
    if not isinstance(text, str):
        raise TypeError(f"parse() needs a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    for mark in ("\n", "\r"):
        if mark in text:
            raise ExpressionError("an expression must fit on one line", text.index(mark) + 1)
    source = text.lstrip(" \t\f")
    shift = len(text) - len(source)
    if not source.strip():
        raise ExpressionError("empty expression", 1)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        message = (exc.msg or "invalid syntax").split(" (")[0]
        column = exc.offset or len(source.rstrip()) + 1  # 0: the text ended too early
        raise ExpressionError(f"syntax error: {message}", shift + column) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression is nested too deeply", 1) from None
    except ValueError as exc:
        raise ExpressionError(f"syntax error: {exc}", 1) from None
    return _compile(text, source, shift, tree.body)


def _compile(text: str, source: str, shift: int, root: ast.AST) -> Expression:
    """Check every node against the whitelist and lay the tree out as a postfix program."""
    program: list[tuple] = []
    names: list[str] = []
    work: list[tuple[ast.AST, bool]] = [(root, False)]
    while work:
        node, done = work.pop()
        position = _column(source, shift, node)
        if done:
            if isinstance(node, ast.BinOp):
                position = _operator_column(source, shift, node)
            program.append(_instruction(node, position))
            continue
        children = _children(node, position, source, shift)
        if isinstance(node, ast.Name) and node.id not in names:
            names.append(node.id)
        work.append((node, True))
        work.extend((child, False) for child in reversed(children))
    return Expression(text, tuple(names), tuple(program))


def _children(node: ast.AST, position: int, source: str, shift: int) -> list[ast.AST]:
    """The operands of an allowed node (raising ExpressionError for a refused one)."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"only numbers are allowed as constants, not {value!r}", position)
        return []
    if isinstance(node, ast.Name):
        if node.id.startswith("__") or node.id.endswith("__"):
            raise ExpressionError(f"name '{node.id}' is not allowed", position)
        if node.id in FUNCTIONS:
            raise ExpressionError(f"'{node.id}' is a function: call it as {node.id}(...)", position)
        return []
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ExpressionError(
                f"operator {_REFUSED_OPERATORS.get(type(node.op), '?')} is not supported", position
            )
        return [node.operand]
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            symbol = _REFUSED_OPERATORS.get(type(node.op), type(node.op).__name__)
            raise ExpressionError(
                f"operator {symbol} is not supported (use + - * / **)",
                _operator_column(source, shift, node),
            )
        return [node.left, node.right]
    if isinstance(node, ast.Call):
        return _call_arguments(node, position)
    what = _REFUSED.get(type(node), f"{type(node).__name__} is")
    raise ExpressionError(f"{what} not allowed in an expression", position)


def _operator_column(source: str, shift: int, node: ast.BinOp) -> int:
    """The column of a binary operator: the first character after its left operand that is
    not a space or a closing parenthesis."""
    end = len(source.encode("utf-8")[: node.left.end_col_offset].decode("utf-8", "replace"))
    while end < len(source) and source[end] in " \t)":
        end += 1
    return shift + end + 1


def _call_arguments(node: ast.Call, position: int) -> list[ast.AST]:
    func = node.func
    if not isinstance(func, ast.Name):
        raise ExpressionError(
            "only the functions " + ", ".join(FUNCTIONS) + " can be called", position
        )
    name = func.id
    if name not in FUNCTIONS:
        raise ExpressionError(
            f"unknown function '{name}' (known: {', '.join(FUNCTIONS)})", position
        )
    if node.keywords:
        raise ExpressionError(f"{name}() takes no keyword arguments", position)
    count = len(node.args)
    if name in _UNARY and count != 1:
        raise ExpressionError(f"{name}() takes exactly 1 argument, got {count}", position)
    if name in _VARIADIC and count < 2:
        raise ExpressionError(f"{name}() takes at least 2 arguments, got {count}", position)
    return list(node.args)


def _instruction(node: ast.AST, position: int) -> tuple:
    if isinstance(node, ast.Constant):
        try:
            number = float(node.value)
        except OverflowError:
            raise ExpressionError(f"number {node.value} is too large", position) from None
        if not math.isfinite(number):
            raise ExpressionError("number is too large for a float", position)
        return ("number", number, position)
    if isinstance(node, ast.Name):
        return ("name", node.id, position)
    if isinstance(node, ast.UnaryOp):
        return ("neg" if isinstance(node.op, ast.USub) else "pos", None, position)
    if isinstance(node, ast.BinOp):
        return ("binary", type(node.op), position)
    return ("call", (node.func.id, len(node.args)), position)
