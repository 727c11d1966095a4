"""A gate's backward, recorded: the gradients it sends to its inputs as circuits of gates.

With ``create_graph`` a gate's backward (written in chainrule operations) records a circuit of
its own, on a context whose saved values are the forward circuit's nodes. Reading that circuit
gives each input's gradient as an expression over the upstream gradient and the forward values:
``cr.stage`` writes it as code and ``explain`` shows it in dimension-analysis form. The gate's
``backward`` stays the one statement of its derivative.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, MutableMapping
from typing import Any

import numpy as np

from ..engine import Node, _GraphContext, check_gradients, enable_grad
from .code import Namespace, StageError, annotate, gate_template, parse, substitute

__all__ = ["Expressions", "record_backward", "upstream_leaf"]


def upstream_leaf(node: Node, value: Any) -> Node:
    """A leaf standing for the gradient arriving at ``node`` (holding ``value``), which the
    recorded backward is expressed in."""
    leaf = node._front._constant(value)
    leaf.requires_grad = True
    return leaf


def record_backward(node: Node, upstream: Node, ctx: Any = None) -> tuple:
    """Run ``node``'s gate backward on ``upstream`` with the backward recorded; one gradient node
    (or None) per input. ``ctx`` is the gate's context (default: the node itself; a reader
    passes one whose cache was rebuilt after backward released it). The gradients are checked
    at the gate boundary as ``create_graph`` checks them: a backward that leaves chainrule
    (NumPy on saved arrays) is refused with the gate's name."""
    with enable_grad():
        context = _GraphContext(node if ctx is None else ctx)
        return check_gradients(node, node._gate.backward(context, upstream), create_graph=True)


class Expressions:
    """Expressions of the nodes a backward recorded, over known nodes (``refs``: the upstream
    leaf, the forward circuit's values).

    Each recorded node is written with its gate's forward code. ``on_shared(node, tree)`` is
    asked for the expression of a node used more than once (it may store it in a variable and
    return that variable's name); without it shared nodes are written out where used.
    ``scalar(node)`` says whether a known node is a plain number that may stand where its gate
    accepts one; where a gate needs an array, ``materialize(node)`` gives its array expression.
    """

    def __init__(
        self,
        gate: str,
        namespace: Namespace,
        refs: MutableMapping[Node, ast.expr],
        on_shared: Callable[[Node, ast.expr], ast.expr] | None = None,
        materialize: Callable[[Node, ast.expr], ast.expr] | None = None,
    ) -> None:
        self.gate = gate
        self.namespace = namespace
        self.refs = refs
        self.on_shared = on_shared
        self.materialize = materialize
        self.uses: dict[Node, int] = {}

    def count(self, roots: list[Node]) -> None:
        """Count how often each recorded node is used by ``roots`` and by each other."""
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node in self.refs:
                continue
            seen = node in self.uses
            self.uses[node] = self.uses.get(node, 0) + 1
            if not seen and node._gate is not None:
                stack.extend(node.inputs)

    def root(self, node: Node) -> ast.expr:
        """The expression of a gradient, written out even where it is used again."""
        return self(node, shared=False)

    def __call__(self, node: Node, shared: bool = True) -> ast.expr:
        ref = self.refs.get(node)
        if ref is not None:
            return ref
        if node._gate is None:
            return self._constant(node)
        template = gate_template(node, self.namespace)
        args = [self(inp) for inp in node.inputs]
        if self.materialize is not None and any(map(_is_number, args)):
            # a number stands for its whole array only where the gate takes one, and where the
            # other operands alone already give the output its shape
            shapes = [() if _is_number(a) else np.shape(i.data) for a, i in zip(args, node.inputs)]
            spans = _broadcast(shapes) == np.shape(node.data) or numpy_call(template) in _SHAPING
            for i, inp in enumerate(node.inputs):
                if _is_number(args[i]) and not (
                    spans and scalar_ok(template, i, np.size(inp.data))
                ):
                    args[i] = self.materialize(inp, args[i])
        tree = annotate(substitute(template, args), np.asarray(node.data).dtype)
        tree.cr_shape = np.shape(node.data)
        if shared and self.on_shared is not None and self.uses.get(node, 0) > 1:
            tree = self.on_shared(node, tree)
            self.refs[node] = tree
        return tree

    def _constant(self, node: Node) -> ast.expr:
        data = node.data
        if node.requires_grad:
            raise StageError(
                f"gate '{self.gate}': its backward uses a value that requires grad but is not "
                "part of the circuit being staged (a tensor captured from elsewhere)"
            )
        if np.ndim(data) == 0:
            return parse(self.namespace.lit(data))
        raise StageError(
            f"gate '{self.gate}': its backward uses an array of shape {np.shape(data)} computed "
            "outside chainrule (NumPy on saved arrays, or a derived value saved in forward), "
            "which staged code would freeze at its traced value; compute it with chainrule "
            "operations from ctx.saved_tensors (masks: cr.greater, cr.equal...)"
        )


def _broadcast(shapes: list) -> tuple | None:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


def _is_number(tree: ast.AST) -> bool:
    return constant_number(tree) is not None


def constant_number(tree: ast.AST) -> float | None:
    """The number a literal stands for: ``2``, ``-1.5``, or a typed ``np.float32(1.0)`` (how a
    folded gradient of a float32 value is written, so that it keeps its dtype)."""
    if numpy_call(tree) in _FLOAT_TYPES and len(tree.args) == 1 and not tree.keywords:
        tree = tree.args[0]
    negate = isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.USub)
    if negate:
        tree = tree.operand
    if isinstance(tree, ast.Constant) and type(tree.value) in (int, float):
        return -tree.value if negate else tree.value
    return None


_FLOAT_TYPES = {"float16", "float32", "float64", "longdouble"}


# NumPy functions whose result takes its shape from their arguments, not from the number given.
_SHAPING = {"reshape", "broadcast_to", "full"}
# NumPy functions that take a number wherever an array of the right shape is expected.
_SCALAR_ARGS = {"where": (0, 1, 2), "broadcast_to": (0,), "full": (1,)}


def scalar_ok(template: ast.expr, i: int, size: int) -> bool:
    """Whether a gate's code accepts a plain number for input ``i`` (an operand of arithmetic,
    a comparison or a ufunc; reshaped, when the input has one element) rather than needing an
    array (``.T``, ``@``, a reduction)."""
    for parent in ast.walk(template):
        for child in ast.iter_child_nodes(parent):
            if not (isinstance(child, ast.Name) and child.id == f"_cr_arg{i}_"):
                continue
            if isinstance(parent, ast.BinOp) and not isinstance(parent.op, ast.MatMult):
                continue
            if isinstance(parent, (ast.UnaryOp, ast.Compare)):
                continue
            name = numpy_call(parent)
            if name is not None and child in parent.args:
                fn = getattr(np, name, None)
                position = parent.args.index(child)
                if isinstance(fn, np.ufunc) or position in _SCALAR_ARGS.get(name, ()):
                    continue
                if name == "reshape" and position == 0 and size == 1:
                    continue
            return False
    return True


def numpy_call(node: ast.AST) -> str | None:
    """The NumPy function name of a call ``np.name(...)``, else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "np"
    ):
        return node.func.attr
    return None
