"""A safe parser for the expressions of ``chainrule explain`` and ``chainrule stage``.

The text is parsed with Python's ``ast`` and checked against a whitelist (numbers, names,
nested-list literals, ``+ - * / ** @``, unary minus, parentheses, and the functions of the
registry below, reductions taking an ``axis=`` keyword); anything else is refused with an
:class:`ExpressionError` that names the 1-based column. Nothing is ever ``eval``-ed: a checked
expression is kept as a postfix program of chainrule operations and run on the values given to
:meth:`Expression.build`, so it builds a circuit of Values or of Tensors alike.
:func:`parse_value` reads a number or a nested list (``[[0.1, 0.5], [-0.3, 0.8]]``) the same way.

The functions an expression may call come from one registry: :data:`ELEMENTWISE` (one argument),
:data:`PAIRWISE` (two or more arguments, folded: ``max(x, y, z)``) and :data:`REDUCTIONS` (one
argument and an optional ``axis=``; ``max``/``min`` with one argument reduce). Adding a function
is one entry in one of them.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import ops
from .engine import Node
from .i18n import N_, _
from .ops import special, trig
from .tensor import Tensor
from .value import Value

__all__ = [
    "ELEMENTWISE",
    "MAX_LENGTH",
    "PAIRWISE",
    "REDUCTIONS",
    "Expression",
    "ExpressionError",
    "functions",
    "parse",
    "parse_value",
]

MAX_LENGTH = 2000
"""The longest expression (or value) text accepted, in characters."""

ELEMENTWISE: dict[str, Callable[[Any], Any]] = {
    "exp": ops.exp,
    "log": ops.log,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "abs": ops.absolute,
    "sqrt": ops.sqrt,
    **{
        name: getattr(module, name)
        for module, names in (
            (trig, "sin cos tan arcsin arccos arctan sinh cosh arcsinh arctanh"),
            (special, "sign floor ceil square expm1 log1p log2 log10 exp2"),
        )
        for name in names.split()
    },
}
"""Functions of one argument, applied element by element."""
PAIRWISE: dict[str, Callable[[Any, Any], Any]] = {
    "max": ops.maximum,
    "min": ops.minimum,
    "arctan2": special.arctan2,
    "hypot": special.hypot,
    "logaddexp": special.logaddexp,
}
"""Functions of two or more arguments, folded from the left."""
REDUCTIONS: dict[str, Callable[..., Any]] = {
    "sum": ops.reduce.sum,
    "mean": ops.reduce.mean,
    "max": ops.reduce.max,
    "min": ops.reduce.min,
}
"""Functions of one array and an optional ``axis=`` (an integer) that reduce it."""


def functions() -> tuple[str, ...]:
    """Every function name an expression may call, sorted."""
    return tuple(sorted({*ELEMENTWISE, *PAIRWISE, *REDUCTIONS}))


_BINARY: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.Pow: ("**", lambda a, b: a**b),
    ast.MatMult: ("@", lambda a, b: _matmul(a, b)),
}
_REFUSED_OPERATORS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Invert: "~",
    ast.Not: "not",
}
_REFUSED = {
    ast.Attribute: N_("attribute access is not allowed in an expression"),
    ast.Subscript: N_("subscripts are not allowed in an expression"),
    ast.Lambda: N_("lambdas are not allowed in an expression"),
    ast.ListComp: N_("comprehensions are not allowed in an expression"),
    ast.SetComp: N_("comprehensions are not allowed in an expression"),
    ast.DictComp: N_("comprehensions are not allowed in an expression"),
    ast.GeneratorExp: N_("comprehensions are not allowed in an expression"),
    ast.Compare: N_("comparisons are not allowed in an expression"),
    ast.BoolOp: N_("'and'/'or' are not allowed in an expression"),
    ast.IfExp: N_("conditional expressions are not allowed in an expression"),
    ast.Tuple: N_("tuples are not allowed in an expression"),
    ast.Dict: N_("dicts are not allowed in an expression"),
    ast.Set: N_("sets are not allowed in an expression"),
    ast.NamedExpr: N_("assignment expressions are not allowed in an expression"),
    ast.Starred: N_("starred arguments are not allowed in an expression"),
    ast.JoinedStr: N_("strings are not allowed in an expression"),
    ast.Await: N_("await is not allowed in an expression"),
    ast.Slice: N_("slices are not allowed in an expression"),
}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or built; ``position`` is the 1-based column."""

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = max(1, int(position))
        super().__init__(
            _("column {position}: {message}").format(position=self.position, message=message)
        )


class Expression:
    """A checked arithmetic expression: its text, its variable names (in order of first
    appearance) and :meth:`build`, which makes its circuit from given values."""

    __slots__ = ("text", "names", "_program")

    def __init__(self, text: str, names: tuple[str, ...], program: tuple) -> None:
        self.text = text
        self.names = names
        self._program = program

    @property
    def needs_arrays(self) -> bool:
        """Whether the expression only makes sense on arrays (Tensors): it uses ``@``, a list
        literal or a reduction (``sum``, ``mean``, one-argument ``max``/``min``)."""
        for op, arg, _position in self._program:
            if op == "array" or (op == "binary" and arg is ast.MatMult):
                return True
            if op == "call" and _is_reduction(arg[0], arg[1]):
                return True
        return False

    def build(self, values: Mapping[str, Any]) -> Node:
        """The expression's circuit over ``values`` (name -> Value, Tensor or number), built with
        chainrule's gates; numbers in the text are constants. Its output is always a node."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ExpressionError(
                _("no value given for '{name}'").format(name=missing[0]),
                self._first_position(missing[0]),
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
    if op == "array":
        return _("list")
    if op == "binary":
        return _("operator {symbol}").format(symbol=_BINARY[arg][0])
    return _("unary -") if op == "neg" else _("value")


def _run(op: str, arg: Any, stack: list, values: Mapping[str, Any]) -> Any:
    """One postfix instruction: push a number or a value, or apply an operation to the top."""
    if op in ("number", "array"):
        return arg
    if op == "name":
        value = values[arg]
        if isinstance(value, Node):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(
            _("the value of '{name}' must be a Value, Tensor or number, got {type}").format(
                name=arg, type=type(value).__name__
            )
        )
    if op == "neg":
        return -stack.pop()
    if op == "pos":
        return stack.pop()
    if op == "binary":
        right, left = stack.pop(), stack.pop()
        result = _BINARY[arg][1](left, right)
        if isinstance(result, complex):
            raise ValueError(
                _("{left} ** {right} is not a real number").format(
                    left=repr(left), right=repr(right)
                )
            )
        return result
    name, count, axis = arg
    args = stack[-count:]
    del stack[-count:]
    if _is_reduction(name, count):
        if not isinstance(args[0], Tensor):
            raise TypeError(_("it reduces an array: give array values (e.g. --at x=[1,2,3])"))
        return REDUCTIONS[name](args[0], axis=axis)
    if name in ELEMENTWISE:
        return ELEMENTWISE[name](args[0])
    result = args[0]
    for other in args[1:]:
        result = PAIRWISE[name](result, other)
    return result


def _is_reduction(name: str, count: int) -> bool:
    return name in REDUCTIONS and (count == 1 or name not in PAIRWISE)


def _matmul(a: Any, b: Any) -> Any:
    if not (isinstance(a, Tensor) or isinstance(b, Tensor)):
        raise TypeError(_("it multiplies arrays: give array values (e.g. --at W=[[1,2],[3,4]])"))
    return ops.matmul(a, b)


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
        raise ExpressionError(
            _("expression is longer than {limit} characters").format(limit=MAX_LENGTH),
            MAX_LENGTH + 1,
        )
    for mark in ("\n", "\r"):
        if mark in text:
            raise ExpressionError(_("an expression must fit on one line"), text.index(mark) + 1)
    source = text.lstrip(" \t\f")
    shift = len(text) - len(source)
    if not source.strip():
        raise ExpressionError(_("empty expression"), 1)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        message = (exc.msg or "invalid syntax").split(" (")[0]
        column = exc.offset or len(source.rstrip()) + 1  # 0: the text ended too early
        raise ExpressionError(
            _("syntax error: {message}").format(message=message), shift + column
        ) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(_("expression is nested too deeply"), 1) from None
    except ValueError as exc:
        raise ExpressionError(_("syntax error: {message}").format(message=exc), 1) from None
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
            raise ExpressionError(
                _("only numbers are allowed as constants, not {value}").format(value=repr(value)),
                position,
            )
        return []
    if isinstance(node, ast.Name):
        if node.id.startswith("__") or node.id.endswith("__"):
            raise ExpressionError(_("name '{name}' is not allowed").format(name=node.id), position)
        if node.id in functions():
            raise ExpressionError(
                _("'{name}' is a function: call it as {name}(...)").format(name=node.id), position
            )
        return []
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ExpressionError(
                _("operator {symbol} is not supported").format(
                    symbol=_REFUSED_OPERATORS.get(type(node.op), "?")
                ),
                position,
            )
        return [node.operand]
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            symbol = _REFUSED_OPERATORS.get(type(node.op), type(node.op).__name__)
            raise ExpressionError(
                _("operator {symbol} is not supported (use + - * / ** @)").format(symbol=symbol),
                _operator_column(source, shift, node),
            )
        return [node.left, node.right]
    if isinstance(node, ast.Call):
        return _call_arguments(node, position, source, shift)
    if isinstance(node, ast.List):
        return []
    message = _REFUSED.get(type(node))
    if message is None:
        raise ExpressionError(
            _("{what} is not allowed in an expression").format(what=type(node).__name__), position
        )
    raise ExpressionError(_(message), position)


def _operator_column(source: str, shift: int, node: ast.BinOp) -> int:
    """The column of a binary operator: the first character after its left operand that is
    not a space or a closing parenthesis."""
    end = len(source.encode("utf-8")[: node.left.end_col_offset].decode("utf-8", "replace"))
    while end < len(source) and source[end] in " \t)":
        end += 1
    return shift + end + 1


def _call_arguments(node: ast.Call, position: int, source: str, shift: int) -> list[ast.AST]:
    func = node.func
    known = ", ".join(functions())
    if not isinstance(func, ast.Name):
        raise ExpressionError(
            _("only the functions {known} can be called").format(known=known), position
        )
    name = func.id
    if name not in functions():
        raise ExpressionError(
            _("unknown function '{name}' (known: {known})").format(name=name, known=known), position
        )
    count = len(node.args)
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise ExpressionError(_("starred arguments are not allowed in an expression"), position + 4)
    if node.keywords:
        if (
            not _is_reduction(name, count)
            or len(node.keywords) > 1
            or (node.keywords[0].arg != "axis")
        ):
            message = (
                _("{name}() takes axis= only")
                if _is_reduction(name, count)
                else _("{name}() takes no keyword arguments")
            )
            raise ExpressionError(message.format(name=name), position)
        _axis(node.keywords[0].value, _column(source, shift, node.keywords[0].value))
    if name in ELEMENTWISE and count != 1:
        raise ExpressionError(
            _("{name}() takes exactly 1 argument, got {count}").format(name=name, count=count),
            position,
        )
    if name in REDUCTIONS and name not in PAIRWISE and count != 1:
        raise ExpressionError(
            _("{name}() takes exactly 1 argument, got {count}").format(name=name, count=count),
            position,
        )
    if name in PAIRWISE and name not in REDUCTIONS and count < 2:
        raise ExpressionError(
            _("{name}() takes at least 2 arguments, got {count}").format(name=name, count=count),
            position,
        )
    if count == 0:
        raise ExpressionError(_("{name}() needs an argument").format(name=name), position)
    return list(node.args)


def _axis(node: ast.AST, position: int) -> int:
    """An ``axis=`` value: a whole number, possibly negative."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and node.value < 64
    ):
        return sign * node.value
    raise ExpressionError(_("axis= must be a whole number, e.g. axis=0 or axis=-1"), position)


def _instruction(node: ast.AST, position: int) -> tuple:
    if isinstance(node, ast.Constant):
        try:
            number = float(node.value)
        except OverflowError:
            raise ExpressionError(
                _("number {value} is too large").format(value=node.value), position
            ) from None
        if not math.isfinite(number):
            raise ExpressionError(_("number is too large for a float"), position)
        return ("number", number, position)
    if isinstance(node, ast.Name):
        return ("name", node.id, position)
    if isinstance(node, ast.UnaryOp):
        return ("neg" if isinstance(node.op, ast.USub) else "pos", None, position)
    if isinstance(node, ast.BinOp):
        return ("binary", type(node.op), position)
    if isinstance(node, ast.List):
        return ("array", _literal(node, position), position)
    axis = node.keywords[0].value if node.keywords else None
    axis = None if axis is None else _axis(axis, position)
    return ("call", (node.func.id, len(node.args), axis), position)


def _literal(root: ast.AST, position: int) -> np.ndarray:
    """A nested list of numbers as a float64 array: rectangular and at most 32 levels deep
    (checked without recursion; its size is bounded by the text's length limit)."""
    numbers: list[float] = []
    shapes: dict[int, set] = {}
    work: list[tuple[ast.AST, int]] = [(root, 0)]
    while work:
        node, depth = work.pop()
        if depth > 32:
            raise ExpressionError(_("list is nested too deeply"), position)
        if isinstance(node, ast.List):
            shapes.setdefault(depth, set()).add(len(node.elts))
            work.extend((e, depth + 1) for e in reversed(node.elts))
            continue
        shapes.setdefault(depth, set()).add(None)
        numbers.append(_literal_number(node, position))
    sizes = [shapes[d] for d in sorted(shapes)]
    if any(len(s) != 1 for s in sizes) or 0 in sizes[0]:
        raise ExpressionError(
            _("a list must be rectangular (every row as long, numbers at one depth) and not empty"),
            position,
        )
    shape = tuple(next(iter(s)) for s in sizes[:-1])
    return np.array(numbers, dtype=np.float64).reshape(shape)


def _literal_number(node: ast.AST, position: int) -> float:
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExpressionError(_("a list may hold only numbers (or lists of numbers)"), position)
    try:
        number = sign * float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ExpressionError(_("a number in the list is too large for a float"), position)
    return number


def parse_value(text: str) -> float | np.ndarray:
    """A value given on the command line: a number (``-2``, ``1e-3``) or a nested list of
    numbers (``[[0.1, 0.5], [-0.3, 0.8]]``) as a float64 array. Parsed with ``ast`` and the
    same checks as a list in an expression; never evaluated."""
    if not isinstance(text, str):
        raise TypeError(f"parse_value() needs a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            _("value is longer than {limit} characters").format(limit=MAX_LENGTH), MAX_LENGTH + 1
        )
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            _("'{text}' is not a number or a list of numbers").format(text=text), exc.offset or 1
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(_("value is nested too deeply"), 1) from None
    node = tree.body
    if isinstance(node, ast.List):
        return _literal(node, 1)
    try:
        return _literal_number(node, 1)
    except ExpressionError:
        raise ExpressionError(
            _("'{text}' is not a number or a list of numbers").format(text=text), 1
        ) from None
