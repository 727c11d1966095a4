"""Simplifying staged expressions without changing a single bit of what they compute.

Constants are folded (``2 - 1``), multiplications by one dropped where they cannot change a dtype
(a folded seed: ``2 * y * 1.0`` is ``2 * y``), ``x ** 1`` and double negation removed, ``-a + c``
written ``c - a`` (the same IEEE addition), ``x + -c`` written ``x - c``, and NumPy's default
keywords (``axis=None``, ``keepdims=False``) left out (and ``axis=(1,)`` written ``axis=1``), and
a number stretched to the shape the other operand already has written as the number.
"""

from __future__ import annotations

import ast
import math

from .record import constant_number, numpy_call

__all__ = ["fill", "number", "simplify"]


def number(node: ast.AST) -> float | None:
    """The number a literal (or a negated literal) is, else None."""
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


def _keeps_dtype(operand: ast.AST, whole: ast.AST) -> bool:
    """Whether ``operand`` alone has the dtype of ``whole`` and is floating (so dropping a
    multiplication by one changes nothing)."""
    a, b = getattr(operand, "cr_dtype", None), getattr(whole, "cr_dtype", None)
    return a is not None and a == b and a.kind == "f"


_FOLD = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_DEFAULT_KEYWORDS = {"axis": None, "keepdims": False}


class _Simplify(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        a, b = number(node.left), number(node.right)
        op = type(node.op)
        if a is not None and b is not None and op in _FOLD:
            try:
                value = _FOLD[op](a, b)
            except (ArithmeticError, ValueError):
                return node
            if isinstance(value, (int, float)) and math.isfinite(value):
                return _constant(value)
            return node
        if op in _FOLD and op is not ast.Pow:
            _unstretch(node)
        if op is ast.Mult and a == 1 and _keeps_dtype(node.right, node):
            return node.right
        if op in (ast.Mult, ast.Div, ast.Pow) and b == 1 and _keeps_dtype(node.left, node):
            return node.left
        if op is ast.Add and isinstance(node.left, ast.UnaryOp) and b is not None:
            if isinstance(node.left.op, ast.USub) and number(node.left) is None:
                return _typed(ast.BinOp(node.right, ast.Sub(), node.left.operand), node)
        if op in (ast.Add, ast.Sub) and b is not None and b < 0:
            flipped = ast.Sub() if op is ast.Add else ast.Add()
            return _typed(ast.BinOp(node.left, flipped, ast.Constant(-b)), node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        inner = node.operand
        if isinstance(node.op, ast.USub):
            if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub):
                return inner.operand
            value = number(inner)
            if value is not None:
                return _constant(-value)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        name = numpy_call(node)
        if name is None:
            return node
        for k in node.keywords:
            if k.arg == "axis" and isinstance(k.value, ast.Tuple) and len(k.value.elts) == 1:
                k.value = k.value.elts[0]  # axis=(1,) is axis=1
        node.keywords = [
            k
            for k in node.keywords
            if not (
                k.arg in _DEFAULT_KEYWORDS
                and isinstance(k.value, ast.Constant)
                and k.value.value is _DEFAULT_KEYWORDS[k.arg]
            )
        ]
        if name == "broadcast_to" and node.args:
            inner = node.args[0]
            if numpy_call(inner) == "reshape" and inner.args and _one_element(inner.args[0], node):
                node.args[0] = inner.args[0]  # one element reshaped, then stretched
        return node


def _unstretch(node: ast.BinOp) -> None:
    """``a * np.broadcast_to(c, shape)`` is ``a * c`` when ``a`` alone has that shape and the
    result's dtype: the number broadcasts by itself (no array of copies is made)."""
    for side, other in (("left", node.right), ("right", node.left)):
        operand = getattr(node, side)
        if numpy_call(operand) != "broadcast_to" or len(operand.args) != 2:
            continue
        if constant_number(operand.args[0]) is None or not _keeps_dtype(other, node):
            continue
        try:
            shape = ast.literal_eval(operand.args[1])
        except ValueError:
            continue
        if getattr(other, "cr_shape", None) == tuple(shape):
            setattr(node, side, operand.args[0])


def _one_element(tree: ast.AST, stretch: ast.Call) -> bool:
    """Whether ``tree`` is a number, or an array of one element with no more dimensions than
    ``stretch`` (an ``np.broadcast_to``) gives: stretching it needs no reshape first."""
    if constant_number(tree) is not None:
        return True
    shape = getattr(tree, "cr_shape", None)
    target = getattr(stretch, "cr_shape", None)
    return (
        shape is not None
        and target is not None
        and math.prod(shape) == 1
        and len(shape) <= len(target)
    )


def _typed(new: ast.AST, old: ast.AST) -> ast.AST:
    for note in ("cr_dtype", "cr_shape"):
        if hasattr(old, note):
            setattr(new, note, getattr(old, note))
    return new


def simplify(tree: ast.AST) -> ast.AST:
    """``tree`` simplified (see the module docstring)."""
    return _Simplify().visit(tree)


def fill(tree: ast.AST) -> ast.AST | None:
    """The number a gradient expression fills its whole shape with, if it is one."""
    if constant_number(tree) is not None:
        return tree
    name = numpy_call(tree)
    if name in ("broadcast_to", "reshape") and len(tree.args) == 2:
        if constant_number(tree.args[0]) is not None:
            return tree.args[0]
    if name == "full" and len(tree.args) >= 2 and number(tree.args[1]) is not None:
        return tree.args[1]
    return None
