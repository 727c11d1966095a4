"""The record of a computation and the backward sweep over it.

A :class:`Node` is a value together with how it was made: the gate that produced it, the nodes it
was made from, and what the gate cached. The engine knows nothing about any particular gate: it
sweeps the record in reverse (latest-made gate first, by creation stamp; no recursion, so a chain
of a million gates is fine), asks each gate for its inputs' gradients and adds them up where a
value fans out.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Generator, Sequence
from heapq import heappop, heappush
from itertools import count
from typing import Any

__all__ = [
    "GateError",
    "Node",
    "backward",
    "enable_grad",
    "gradients",
    "is_grad_enabled",
    "no_grad",
    "topological_order",
]


class GateError(ValueError):
    """A gate was used wrongly: bad input, bad shapes, or a backward of the wrong arity."""


class _GradModeLocal(threading.local):
    """Grad mode, one flag per thread (as in PyTorch): when off, gates compute but record nothing.

    A new thread starts with recording on (the class attribute); ``no_grad`` in one thread, or a
    backward sweep running in it, never changes what another thread records.
    """

    enabled = True


_GradMode = _GradModeLocal()


def is_grad_enabled() -> bool:
    """Whether new gates are recorded for backward (in the calling thread)."""
    return _GradMode.enabled


class _SetGradMode:
    """Context manager (and decorator) that sets the calling thread's grad mode and restores it.

    As a decorator it wraps generator functions too: the mode holds while the generator's body
    runs (each resumption), not merely while the generator object is created.
    """

    mode = True

    def __enter__(self) -> None:
        self._previous = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous

    def __call__(self, fn: Callable) -> Callable:
        manager = self.__class__
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator(*args: Any, **kwargs: Any) -> Generator:
                with manager():
                    gen = fn(*args, **kwargs)
                return (yield from _each_step_under(manager, gen))

            return generator

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with manager():
                return fn(*args, **kwargs)

        return wrapped


def _each_step_under(manager: type, gen: Generator) -> Generator:
    """Drive ``gen`` with every step (send, throw, close) run inside ``manager()``, passing values,
    exceptions and the return value through unchanged (PyTorch's generator wrapping)."""
    try:
        with manager():
            response = gen.send(None)
        while True:
            try:
                request = yield response
            except GeneratorExit:
                with manager():
                    gen.close()
                raise
            except BaseException as exc:
                with manager():
                    response = gen.throw(exc)
            else:
                with manager():
                    response = gen.send(request)
    except StopIteration as stop:
        return stop.value


class no_grad(_SetGradMode):
    """``with cr.no_grad():`` computes values without recording a circuit (like PyTorch).

    Per thread: other threads keep recording. Also a decorator (generator functions included).
    """

    mode = False


class enable_grad(_SetGradMode):
    """Turns recording back on inside a ``no_grad`` block (per thread; also a decorator)."""

    mode = True


class _Released:
    """Marker left in a node's cache once backward has freed it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<released>"


RELEASED = _Released()

#: Stamps each recorded node with a number lower than every earlier one's; the backward sweep
#: visits gate outputs in increasing stamp order, i.e. the latest-made first.
next_stamp = count(0, -1).__next__


class Node:
    """A value in a circuit: its data, its gradient, and the gate that made it.

    A node doubles as the gate's context (``ctx``): ``ctx.save_for_backward(...)`` caches values on
    it and gate-private constants may be stored as attributes. Leaves have no gate.
    """

    __slots__ = (
        "data",
        "grad",
        "requires_grad",
        "name",
        "_gate",
        "_inputs",
        "_saved",
        "_retain",
        "_options",
        "_stamp",
        "__dict__",
        "__weakref__",
    )

    # --- the gate's view (ctx) -------------------------------------------------------------------
    def save_for_backward(self, *values: Any) -> None:
        """Cache raw values (inputs, outputs or anything derived) for the gate's backward."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple:
        """The values cached by ``save_for_backward``; refuses once backward has released them."""
        saved = self._saved
        if saved is RELEASED:
            raise RuntimeError(_released_message(self))
        return saved

    # --- the user's view -------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        """True for nodes made by the user rather than by a gate."""
        return self._gate is None

    @property
    def gate(self):
        """The gate class that produced this node (``None`` for a leaf)."""
        return self._gate

    @property
    def options(self) -> dict:
        """The keyword options the gate was applied with (``axis``, ``shape``, constants...)."""
        return self._options or {}

    @property
    def needs_input_grad(self) -> tuple:
        """For each input, whether backward must produce its gradient (as in PyTorch's ctx)."""
        return tuple(inp.requires_grad for inp in self._inputs)

    @property
    def inputs(self) -> tuple:
        """The nodes this node was computed from, in the gate's argument order."""
        return self._inputs or ()

    def retain_grad(self) -> Node:
        """Keep ``.grad`` on this intermediate node after backward (leaves always keep it)."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        """Reset the accumulated gradient."""
        self.grad = self._zero_grad_value()

    def backward(
        self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Backpropagate from this node, accumulating into every leaf's ``.grad``.

        ``grad`` is the upstream gradient on this node (1 when it is a scalar). The cached forward
        values are released afterwards unless ``retain_graph``; ``create_graph`` records the
        backward pass itself so that gradients can be differentiated again.
        """
        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    # --- hooks each front end provides -----------------------------------------------------------
    def _default_seed(self) -> Any:  # pragma: no cover - every front end overrides
        raise TypeError(f"{type(self).__name__} cannot seed backward")

    def _check_seed(self, grad: Any) -> Any:  # pragma: no cover - every front end overrides
        return grad

    def _accumulate(self, grad: Any) -> None:  # pragma: no cover - every front end overrides
        self.grad = grad if self.grad is None else self.grad + grad

    def _zero_grad_value(self) -> Any:
        return None

    @classmethod
    def _constant(cls, data: Any) -> Node:  # pragma: no cover - every front end overrides
        raise TypeError(f"{cls.__name__} cannot wrap constants")

    __hash__ = object.__hash__


def _released_message(node: Node) -> str:
    gate = node._gate.name if node._gate is not None else "leaf"
    return (
        f"backward through gate '{gate}' a second time, but its cached values were released "
        "after the first backward; pass retain_graph=True to the first backward() to keep them"
    )


def topological_order(root: Node, *, only_grad: bool = True) -> list[Node]:
    """Nodes reachable from ``root`` with every node before the nodes it was made from.

    Iterative (Kahn's algorithm over consumer counts), so depth is unlimited. With ``only_grad``,
    constants (nodes that do not require grad) are left out, as backward never visits them.
    """
    consumers: dict[Node, int] = {root: 0}
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        inputs = node._inputs
        if inputs:
            for inp in inputs:
                if only_grad and not inp.requires_grad:
                    continue
                count = consumers.get(inp)
                if count is None:
                    consumers[inp] = 1
                    push(inp)
                else:
                    consumers[inp] = count + 1
    order = []
    ready = [root]
    while ready:
        node = ready.pop()
        order.append(node)
        inputs = node._inputs
        if inputs:
            for inp in inputs:
                if only_grad and not inp.requires_grad:
                    continue
                left = consumers[inp] - 1
                consumers[inp] = left
                if left == 0:
                    ready.append(inp)
    return order


class _GraphContext:
    """The ctx a gate sees during ``create_graph`` backward: saved values become nodes.

    A saved value that is an input's or the output's data is replaced by that node, so the
    gate's backward (written in differentiable operations) records a circuit of its own. When
    several of them hold the very same object (``Value(a)`` twice with one float ``a``, or a relu
    that returned its input), the input in the saved value's own argument position wins: gates
    save their inputs in argument order.
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        saved = node._saved
        if saved is RELEASED:
            raise RuntimeError(_released_message(node))
        inputs = node._inputs
        known = [(node.data, node)] + [(inp.data, inp) for inp in inputs]
        self.saved_tensors = tuple(
            inputs[k]
            if k < len(inputs) and value is inputs[k].data
            else _as_node(value, known, node)
            for k, value in enumerate(saved)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


def _as_node(value: Any, known: list, owner: Node) -> Any:
    for data, node in known:
        if value is data:
            return node
    if isinstance(value, Node):
        return value
    return owner._constant(value)


def _check_arity(node: Node, grads: Any) -> tuple:
    if type(grads) is not tuple:
        grads = tuple(grads) if isinstance(grads, list) else (grads,)
    if len(grads) != len(node._inputs):
        raise GateError(
            f"gate '{node._gate.name}': backward returned {len(grads)} gradient(s) but the gate "
            f"has {len(node._inputs)} input(s); return one gradient (or None) per input"
        )
    return grads


def _sweep(
    root: Node,
    seed: Any,
    retain_graph: bool,
    create_graph: bool,
    stop_at: set | None = None,
    observe: Any = None,
) -> dict:
    """Backward sweep from ``root``; returns the gradients that reached ``stop_at`` nodes.

    Gates are visited latest-made first: a node is always made after the nodes it was computed
    from, so this is a reverse topological order, found without a separate ordering pass. A
    heap holds the gate outputs that have received some gradient; one is processed only when
    every gate made after it (so every consumer) is done, hence its gradient is complete. (An
    input that would come straight back off the heap skips it and the gradient dict.) Leaves
    are collected and finished at the end.

    Gradients of leaves (and of nodes marked ``retain_grad``) are accumulated into ``.grad``
    unless ``stop_at`` is given, in which case nothing's ``.grad`` is touched. ``observe``, if
    given, is called as ``observe(node, upstream, input_grads)`` for each gate the sweep visits,
    and ``observe(node, upstream, None)`` for each leaf: readers of the circuit use it.
    """
    grads: dict[Node, Any] = {}
    found: dict[Node, Any] = {}
    leaves: list[Node] = []
    heap: list[tuple[int, Node]] = []
    pop, get, push, add_leaf = grads.pop, grads.get, heappush, leaves.append
    node, g = root, seed
    if root._gate is None:
        grads[root] = seed
        add_leaf(root)
        node = None
    while node is not None:
        if stop_at is not None:
            if node in stop_at:
                found[node] = g
        elif node._retain:
            node._accumulate(g)
        if create_graph:
            in_grads = node._gate.backward(_GraphContext(node), g)
        else:
            if node._saved is RELEASED:
                raise RuntimeError(_released_message(node))
            in_grads = node._gate.backward(node, g)
        inputs = node._inputs
        if type(in_grads) is not tuple or len(in_grads) != len(inputs):
            in_grads = _check_arity(node, in_grads)
        if observe is not None:
            observe(node, g, in_grads)
        if not retain_graph:
            node._saved = RELEASED
        if len(inputs) == 1:  # most gates: the loop below, unrolled
            inp = inputs[0]
            gi = in_grads[0]
            if gi is not None and inp.requires_grad:
                prev = get(inp)
                if prev is not None:
                    grads[inp] = prev + gi
                elif inp._gate is None:
                    grads[inp] = gi
                    add_leaf(inp)
                elif not heap or inp._stamp < heap[0][0]:  # the latest-made node waiting: next
                    node, g = inp, gi
                    continue
                else:
                    grads[inp] = gi
                    push(heap, (inp._stamp, inp))
        else:
            # The first gate input reached for the first time and its gradient stay out of
            # ``grads`` and the heap while they may be the very next node.
            follow = follow_g = None
            for inp, gi in zip(inputs, in_grads):
                prev = get(inp)  # only nodes that require grad are ever entered
                if prev is not None:
                    if gi is not None:
                        grads[inp] = prev + gi
                elif gi is None or not inp.requires_grad:
                    continue
                elif inp is follow:
                    follow_g = follow_g + gi
                elif inp._gate is None:
                    grads[inp] = gi
                    add_leaf(inp)
                elif follow is None:
                    follow, follow_g = inp, gi
                else:
                    grads[inp] = gi
                    push(heap, (inp._stamp, inp))
            if follow is not None:
                if not heap or follow._stamp < heap[0][0]:
                    node, g = follow, follow_g
                    continue
                grads[follow] = follow_g
                push(heap, (follow._stamp, follow))
        if heap:
            node = heappop(heap)[1]
            g = pop(node)
        else:
            node = None
    in_grads = gi = follow_g = None  # a leaf may adopt its gradient if nothing else holds it
    for leaf in leaves:
        g = pop(leaf)
        if stop_at is not None:
            if leaf in stop_at:
                found[leaf] = g
        else:
            leaf._accumulate(g)
        if observe is not None:
            observe(leaf, g, None)
    return found


def _prepare_seed(root: Node, grad: Any, create_graph: bool) -> Any:
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a value that does not require grad: nothing in its circuit needs a "
            "gradient (set requires_grad=True on an input, and compute outside no_grad)"
        )
    seed = root._default_seed() if grad is None else root._check_seed(grad)
    if create_graph and not isinstance(seed, Node):
        seed = root._constant(seed)
    return seed


def backward(
    root: Node, grad: Any = None, *, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Sweep ``root``'s circuit backward, accumulating gradients into leaves' ``.grad``."""
    seed = _prepare_seed(root, grad, create_graph)
    _sweep_recording(create_graph, root, seed, retain_graph or create_graph, create_graph)


def sweep_all(root: Node, seed: Any, observe: Any) -> None:
    """A full backward sweep that keeps the circuit and touches no ``.grad``, reporting each
    step to ``observe`` (see :func:`_sweep`); used by the readers of a circuit."""
    _sweep_recording(False, root, seed, True, False, set(), observe)


def gradients(
    output: Node,
    inputs: Sequence[Node],
    grad_output: Any = None,
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> tuple:
    """Gradients of ``output`` with respect to ``inputs`` (like ``torch.autograd.grad``).

    Returns one gradient per input (zeros where ``output`` does not depend on it) without touching
    any ``.grad``. With ``create_graph`` the gradients are nodes that can be differentiated again.
    """
    seed = _prepare_seed(output, grad_output, create_graph)
    found = _sweep_recording(
        create_graph, output, seed, retain_graph or create_graph, create_graph, set(inputs)
    )
    result = []
    for inp in inputs:
        g = found.get(inp)
        if g is None:
            g = inp._constant(inp._zeros_like()) if create_graph else inp._zeros_like()
        result.append(g)
    return tuple(result)


def _sweep_recording(recording: bool, *sweep_args: Any) -> dict:
    """Run :func:`_sweep` with grad mode on only when the backward pass itself is recorded
    (``create_graph``), restoring the caller's mode afterwards. A plain function, not a context
    manager object: this runs once per training step."""
    previous = _GradMode.enabled
    _GradMode.enabled = recording
    try:
        return _sweep(*sweep_args)
    finally:
        _GradMode.enabled = previous
