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
import linecache
import os
import sys
import threading
import weakref
from collections.abc import Callable, Generator, Sequence
from heapq import heappop, heappush
from itertools import count
from operator import attrgetter
from typing import Any

import numpy as np

__all__ = [
    "AnomalyError",
    "GateError",
    "GateTypeError",
    "GateValueError",
    "Node",
    "RemovableHandle",
    "backward",
    "check_gradients",
    "detect_anomaly",
    "is_anomaly_enabled",
    "set_detect_anomaly",
    "enable_grad",
    "gradients",
    "is_grad_enabled",
    "no_grad",
    "topological_order",
]


class GateError(Exception):
    """A gate was used wrongly: bad input, bad shapes, or a backward of the wrong arity.

    The common base of chainrule's gate errors, following Python's convention below it: a wrong
    *value* is a :class:`GateValueError` (also a ``ValueError``; what ``GateError(...)`` itself
    creates), a wrong *type* a :class:`GateTypeError` (also a ``TypeError``). So
    ``except cr.GateError`` catches both, and ``except TypeError`` only the type errors."""

    def __new__(cls, *args: Any, **kwargs: Any) -> GateError:
        return super().__new__(GateValueError if cls is GateError else cls, *args, **kwargs)


class GateValueError(GateError, ValueError):
    """A gate got an argument of the right type but a wrong value (shape, range, size)."""


class GateTypeError(GateError, TypeError):
    """A gate got an argument of the wrong type (float labels, a non-integer shape or axis)."""


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


class AnomalyError(GateError, FloatingPointError):
    """Anomaly mode found the first gate whose forward or backward produced NaN or inf."""


class _AnomalyLocal(threading.local):
    enabled = False


class _Anomaly:
    """Anomaly mode: per thread (as grad mode), with a process-wide count of the threads that
    have it on, so that the hot path pays a single falsy check when nobody uses it."""

    threads = 0
    local = _AnomalyLocal()

    @classmethod
    def set(cls, mode: bool) -> bool:
        previous = cls.local.enabled
        if mode != previous:
            cls.local.enabled = mode
            cls.threads += 1 if mode else -1
        return previous

    @classmethod
    def active(cls) -> bool:
        return cls.threads > 0 and cls.local.enabled


def set_detect_anomaly(mode: bool) -> None:
    """Turn anomaly mode on or off in the calling thread (see :class:`detect_anomaly`)."""
    _Anomaly.set(bool(mode))


def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on in the calling thread."""
    return _Anomaly.local.enabled


class detect_anomaly(_SetGradMode):
    """``with cr.detect_anomaly():`` makes the first gate whose forward or backward produces NaN
    or inf raise an :class:`AnomalyError` naming the gate, the user's line that created it, and a
    summary of its inputs (shape, min/max, non-finite count); backward names the upstream
    gradient too. Like PyTorch's, it slows things down (each gate's source line is captured when
    it is recorded, every gate's values are checked, backward takes the reference loop): use it
    to find a bug, not for training. Per thread; also a decorator."""

    def __enter__(self) -> None:
        self._previous = _Anomaly.set(True)

    def __exit__(self, *exc: object) -> None:
        _Anomaly.set(self._previous)


def _user_site() -> str:
    """Where the gate being recorded was made: the innermost frame of the user's code (outside
    chainrule), and, when a chainrule layer or function made it for them, that line too."""
    user = made = None
    frame = sys._getframe(1)
    while frame is not None and user is None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR):
            if not filename.startswith("<"):
                user = frame
        elif made is None and not filename.startswith(_CORE):
            made = frame
        frame = frame.f_back
    if user is None and made is None:
        return "unknown"
    text = _frame_line(user if user is not None else made)
    if user is not None and made is not None:
        text += f"\n    via {_frame_line(made)}"
    return text


def _frame_line(frame: Any) -> str:
    filename, line = frame.f_code.co_filename, frame.f_lineno
    code = linecache.getline(filename, line).strip()
    return f"{filename}:{line}" + (f": {code}" if code else "")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: The engine and its front ends: frames there are never where a gate was "made".
_CORE = tuple(
    _PACKAGE_DIR + name
    for name in ("engine.py", "gate.py", "tensor.py", "value.py", "functional.py", "ops" + os.sep)
)


def _non_finite(value: Any) -> int:
    """How many entries of ``value`` (a number, an array or a node) are NaN or inf."""
    if isinstance(value, Node):
        value = value._data
    array = np.asarray(value)
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def _summary(value: Any) -> str:
    if isinstance(value, Node):
        value = value._data
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        return f"{type(value).__name__}"
    text = f"shape {array.shape}, dtype {array.dtype}"
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array.ravel()
    if finite.size:
        text += f", finite min {finite.min():.6g}, max {finite.max():.6g}"
    return text + f", {_non_finite(array)} non-finite of {array.size}"


def _anomaly_report(
    node: Node, gate: Any, what: str, inputs: Any, upstream: Any = None
) -> AnomalyError:
    lines = [f"anomaly: gate '{gate.name}' produced NaN or inf in its {what}"]
    site = node.__dict__.get("_site", "unknown (recorded outside detect_anomaly)")
    lines.append(f"  created at {site}")
    for k, inp in enumerate(node.inputs):
        name = f" '{inp.name}'" if inp.name else ""
        lines.append(f"  input {k}{name}: {_summary(inp)}")
    if upstream is not None:
        lines.append(f"  upstream gradient: {_summary(upstream)}")
    for k, g in inputs:
        lines.append(f"  {what} {'' if k == 'output' else 'for input '}{k}: {_summary(g)}")
    return AnomalyError("\n".join(lines))


def _anomaly_forward(out: Node, gate: Any) -> None:
    """In anomaly mode, for each gate application: remember the user's line, refuse a
    non-finite output."""
    out._site = _user_site()
    if _non_finite(out._data):
        raise _anomaly_report(out, gate, "forward", [("output", out._data)])


def _anomaly_backward(node: Node, upstream: Any, in_grads: tuple) -> None:
    bad = [(k, g) for k, g in enumerate(in_grads) if g is not None and _non_finite(g)]
    if bad:
        raise _anomaly_report(node, node._gate, "gradient", bad, upstream)


class _Released:
    """Marker left in a node's cache once backward has freed it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<released>"


RELEASED = _Released()

#: Stamps each recorded node with a number lower than every earlier one's; the backward sweep
#: visits gate outputs in increasing stamp order, i.e. the latest-made first. In-place edits of a
#: node's data draw from the same counter, so "edited after this gate was recorded" is one compare.
next_stamp = count(0, -1).__next__

#: The stamp of the latest in-place edit of any node's data (1: none yet). A gate recorded after it
#: cannot have seen an edit, so reading its saved values needs no further check.
_latest_edit = 1

#: The options of leaves and of gates applied without any: shared, so never written to.
NO_OPTIONS: dict[str, Any] = {}

#: Gate outputs with a hook or ``retain_grad`` that are still alive (by id; an entry leaves with
#: its node): while there is one, backward runs the reference loop, which serves them (the tuned
#: loop does not look for them). Not a WeakSet: that compares nodes with ``==``.
_marked: dict[int, weakref.ref] = {}


def _mark(node: Node) -> None:
    key = id(node)
    if key not in _marked:
        _marked[key] = weakref.ref(node, lambda _, key=key: _marked.pop(key, None))


class Node:
    """A value in a circuit: its data, its gradient, and the gate that made it.

    A node doubles as the gate's context (``ctx``): ``ctx.inputs`` (the input nodes, in argument
    order), ``ctx.options`` (the keyword options the gate was applied with) and
    ``ctx.needs_input_grad`` describe the application, ``ctx.save_for_backward(...)`` caches
    values for backward. Leaves have no gate, no inputs and no options.

    ``data`` is versioned: assigning it (``x.data = ...``, ``x.data *= 10``), an optimizer step
    and ``load_state_dict`` mark it edited, and a gate recorded before the edit refuses to run its
    backward on a saved value that was edited in place (like PyTorch's version counters).
    """

    __slots__ = (
        "_data",
        "grad",
        "requires_grad",
        "_gate",
        "inputs",
        "options",
        "_saved",
        "_stamp",
        "__dict__",
        "__weakref__",
    )

    # Rarely set, so class-level defaults rather than slots written for every node.
    name: str | None = None
    _edited = 1  # stamp of the latest in-place edit of ``data`` (1: never edited)
    _retain = False
    _hooks: dict | None = None

    def _init_node(
        self,
        data: Any,
        grad: Any,
        requires_grad: bool,
        gate: Any = None,
        inputs: tuple = (),
        options: dict[str, Any] = NO_OPTIONS,
        saved: Any = None,
    ) -> None:
        """The one place a node's slots are filled: leaves, constants and gate outputs."""
        self._data = data
        self.grad = grad
        self.requires_grad = requires_grad
        self._gate = gate
        self.inputs = inputs
        self.options = options
        self._saved = saved
        if gate is not None:
            self._stamp = next_stamp()

    # --- data, versioned -------------------------------------------------------------------------
    def _set_data(self, value: Any) -> None:
        self._data = value
        self._bump_version()

    data = property(
        attrgetter("_data"), _set_data, doc="The node's value (assigning it is an in-place edit)."
    )

    def _bump_version(self) -> None:
        """Mark ``data`` as edited in place now (every in-place path of chainrule calls this)."""
        global _latest_edit
        self._edited = _latest_edit = next_stamp()

    # --- the gate's view (ctx) -------------------------------------------------------------------
    def save_for_backward(self, *values: Any) -> None:
        """Cache raw values (inputs, outputs or anything derived) for the gate's backward."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple:
        """The values cached by ``save_for_backward``.

        Refuses once backward has released them, and when a saved input or output was edited in
        place after the gate was recorded (its backward would compute with the changed values).
        """
        saved = self._saved
        if saved is RELEASED:
            raise RuntimeError(_released_message(self))
        if _latest_edit < self._stamp:  # some data was edited after this gate was recorded
            _check_versions(self, saved)
        return saved

    @property
    def needs_input_grad(self) -> tuple:
        """For each input, whether backward must produce its gradient (as in PyTorch's ctx)."""
        return tuple([inp.requires_grad for inp in self.inputs])

    # --- the user's view -------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        """True for nodes made by the user rather than by a gate."""
        return self._gate is None

    @property
    def gate(self):
        """The gate class that produced this node (``None`` for a leaf)."""
        return self._gate

    def retain_grad(self) -> Node:
        """Keep ``.grad`` on this intermediate node after backward (leaves always keep it)."""
        if self._gate is not None:
            self._retain = True
            _mark(self)
        return self

    def register_hook(self, hook: Callable[[Any], Any]) -> RemovableHandle:
        """Call ``hook(grad)`` when this node's gradient is complete (PyTorch's semantics).

        The hook sees the gradient summed over every path (forks included) before it flows on
        to the node's inputs (or, for a leaf, before it is added to ``.grad``); if it returns
        something other than None, that replaces the gradient. Hooks run in the order they were
        registered. Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "register_hook on a value that does not require grad: no gradient will reach it"
            )
        if not callable(hook):
            raise TypeError(f"register_hook needs a callable, got {type(hook).__name__}")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        if self._gate is not None:
            _mark(self)
        return handle

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

    def _gradient_problem(self, grad: Any) -> str | None:  # pragma: no cover - front ends override
        """What is wrong with ``grad`` as this node's gradient (None if nothing)."""
        return None

    @classmethod
    def _constant(cls, data: Any) -> Node:  # pragma: no cover - every front end overrides
        raise TypeError(f"{cls.__name__} cannot wrap constants")

    __hash__ = object.__hash__


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook (idempotent)."""

    __slots__ = ("id", "_hooks")
    _ids = count()

    def __init__(self, hooks: dict) -> None:
        self.id = next(RemovableHandle._ids)
        self._hooks = hooks

    def remove(self) -> None:
        """Unregister the hook; removing twice is harmless."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _run_hooks(node: Node, grad: Any) -> Any:
    """The gradient after ``node``'s hooks, each called with the previous one's result."""
    for hook in list(node._hooks.values()):
        result = hook(grad)
        if result is not None:
            grad = result
    return grad


def _check_versions(node: Node, saved: tuple) -> None:
    """Refuse if a value ``node``'s gate saved is the data of an input (or of the output) that was
    edited in place after the gate was recorded."""
    stamp = node._stamp
    for k, inp in enumerate((*node.inputs, node)):
        if inp._edited < stamp and any(v is inp._data for v in saved):
            what = "its output" if inp is node else f"its input {k}"
            name = f" '{inp.name}'" if inp.name else ""
            raise GateError(
                f"gate '{node._gate.name}': {what}{name} of shape {_shape_of(inp._data)} was "
                "modified by an inplace operation (a .data assignment, an optimizer step or "
                "load_state_dict) after the gate saved it for backward, so its gradient would be "
                "computed from the changed values; run the forward again after changing the data"
            )


def _shape_of(data: Any) -> tuple:
    return tuple(getattr(data, "shape", ()))


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
        inputs = node.inputs
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
        inputs = node.inputs
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

    A user's gate that saved a value *derived* from its inputs (``3 * x * x``) has its forward
    run again on the input nodes, so the derived value is a node too and its derivative is kept;
    if that forward cannot run on nodes, the backward is refused (see :func:`_rerun_forward`).
    Built-in gates that save derived values recompute them from the input nodes in backward.
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        saved = node.saved_tensors
        inputs = node.inputs
        known = [(node._data, node)] + [(inp._data, inp) for inp in inputs]
        derived = [
            k
            for k, value in enumerate(saved)
            if _is_float_data(value) and not any(value is data for data, _ in known)
        ]
        if derived and getattr(node._gate, "_user", False):
            saved = _rerun_forward(node, derived)
        self.saved_tensors = tuple(
            inputs[k]
            if k < len(inputs) and value is inputs[k]._data
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


def _is_float_data(value: Any) -> bool:
    kind = type(value)
    if kind is float or isinstance(value, np.floating):
        return True
    return kind is np.ndarray and value.dtype.kind == "f"


class _Rerun:
    """The ctx of a forward run again on input nodes: it collects what the forward saves."""

    def __init__(self, node: Node) -> None:
        self.inputs, self.options = node.inputs, node.options
        self.saved_tensors: tuple = ()

    def save_for_backward(self, *values: Any) -> None:
        self.saved_tensors = values


def _rerun_forward(node: Node, derived: list[int]) -> tuple:
    """What ``node``'s gate saves when its forward runs on the input nodes (recording), for a
    ``create_graph`` backward that needs the derivative of the derived saved values."""
    gate = node._gate
    advice = (
        f"gate '{gate.name}' saved a value derived from its inputs (saved value {derived[0]}), "
        "and create_graph needs its derivative; write forward with chainrule operations "
        "(operators, cr.exp, ...) so that it also runs on chainrule values, or save the inputs "
        "themselves (ctx.save_for_backward(x)) and compute derived values in backward"
    )
    ctx = _Rerun(node)
    try:
        gate.forward(ctx, *node.inputs, **node.options)
    except Exception as exc:
        raise GateError(f"{advice} (running forward on chainrule values failed: {exc})") from exc
    saved = ctx.saved_tensors
    if len(saved) != len(node._saved) or not all(isinstance(saved[k], Node) for k in derived):
        raise GateError(f"{advice} (on chainrule values forward saved raw data instead)")
    return saved


def _check_arity(node: Node, grads: Any) -> tuple:
    if type(grads) is not tuple:
        grads = tuple(grads) if isinstance(grads, list) else (grads,)
    if len(grads) != len(node.inputs):
        raise GateError(
            f"gate '{node._gate.name}': backward returned {len(grads)} gradient(s) but the gate "
            f"has {len(node.inputs)} input(s); return one gradient (or None) per input"
        )
    return grads


def is_complex(value: Any) -> bool:
    """Whether ``value`` (a number, an array or a node) holds complex numbers, which chainrule
    refuses everywhere: gradients of real functions are real, and dropping an imaginary part
    would be silently wrong."""
    if isinstance(value, Node):
        value = value._data
    kind = type(value)
    if kind is float or kind is int:
        return False
    if kind is complex or isinstance(value, np.complexfloating):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind == "c"


def check_gradients(node: Node, grads: Any, create_graph: bool = False) -> tuple:
    """The gradients a gate's backward returned, checked at the gate boundary.

    One per input (or None); each must match its input as the front end requires (for arrays:
    the same shape and dtype), and none may be complex. Under ``create_graph`` each must be a node:
    a raw array means the backward computed outside chainrule's operations (NumPy on saved
    data), so its own derivative would be silently lost. Raises a ``GateError`` naming the gate,
    the input slot, what was expected and what came back.
    """
    grads = _check_arity(node, grads)
    gate = node._gate.name
    for k, (inp, g) in enumerate(zip(node.inputs, grads)):
        if g is None or not inp.requires_grad:
            continue
        if create_graph and not isinstance(g, Node):
            raise GateError(
                f"gate '{gate}': under create_graph backward returned a raw "
                f"{type(g).__name__} for input {k}, so it left chainrule (NumPy on saved data) "
                "and its own derivative would be lost; write backward with chainrule "
                "operations on ctx.saved_tensors and grad (operators, cr.exp, ...) so that it "
                "records a circuit"
            )
        problem = "complex values" if is_complex(g) else inp._gradient_problem(g)
        if problem is not None:
            raise GateError(
                f"gate '{gate}': backward returned a gradient for input {k} with {problem}"
            )
    return grads


def _tuned_sweep(root: Node, seed: Any, retain_graph: bool) -> None:
    """Plain backward from ``root``: the hot loop, accumulating into leaves' ``.grad``.

    Gates are visited latest-made first: a node is always made after the nodes it was computed
    from, so this is a reverse topological order, found without a separate ordering pass. A
    heap holds the gate outputs that have received some gradient; one is processed only when
    every gate made after it (so every consumer) is done, hence its gradient is complete.

    Tuned (measured on chains: 1.2-2.7x): an input that would come straight back off the heap
    skips it and the gradient dict, and one-input gates have an unrolled branch. It serves plain
    backward only (leaf hooks included); readers, ``create_graph``, ``retain_grad`` and hooks on
    gate outputs use :func:`_reference_sweep`, of which this must stay an exact shortcut (a
    differential test checks it).
    """
    grads: dict[Node, Any] = {}
    leaves: list[Node] = []
    heap: list[tuple[int, Node]] = []
    pop, get, push, add_leaf = grads.pop, grads.get, heappush, leaves.append
    node, g = root, seed
    if root._gate is None:
        grads[root] = seed
        add_leaf(root)
        node = None
    while node is not None:
        if node._saved is RELEASED:
            raise RuntimeError(_released_message(node))
        in_grads = node._gate.backward(node, g)
        inputs = node.inputs
        if type(in_grads) is not tuple or len(in_grads) != len(inputs):
            in_grads = _check_arity(node, in_grads)
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
        if leaf._hooks:
            g = _run_hooks(leaf, g)
        leaf._accumulate(g)


def _reference_sweep(
    root: Node,
    seed: Any,
    retain_graph: bool,
    create_graph: bool,
    stop_at: set | None = None,
    observe: Any = None,
    context: Callable[[Node], Any] | None = None,
) -> dict:
    """The plain backward loop, serving every feature; returns the gradients reaching ``stop_at``.

    Gate outputs are taken latest-made first (a reverse topological order: every consumer of a
    node is made after it, so its gradient is complete when it is taken), leaves at the end in
    the order they were reached. For each node: its hooks run on the completed gradient (a hook
    may replace it); ``retain_grad`` keeps it; its gate's backward turns it into input gradients,
    which add up at forks.

    Without ``stop_at`` leaves' (and ``retain_grad`` nodes') ``.grad`` accumulate; with it no
    ``.grad`` is touched. ``observe(node, upstream, input_grads)`` is called right after each
    gate's backward returns, and ``observe(leaf, grad, None)`` for each leaf: readers use it (a
    reader may tag the nodes a backward records, as they are made during that call).
    ``context(node)``, if given, is the ctx handed to a gate whose cache backward released
    (readers recompute it) instead of refusing.
    """
    pending: dict[Node, Any] = {}
    heap: list[tuple[int, Node]] = []
    leaves: list[Node] = []
    found: dict[Node, Any] = {}

    def reach(node: Node, g: Any) -> None:
        prev = pending.get(node)
        if prev is not None:
            pending[node] = prev + g
            return
        pending[node] = g
        if node._gate is None:
            leaves.append(node)
        else:
            heappush(heap, (node._stamp, node))

    reach(root, seed)
    while heap:
        node = heappop(heap)[1]
        g = pending.pop(node)
        if node._hooks:
            g = _run_hooks(node, g)
        if stop_at is not None:
            if node in stop_at:
                found[node] = g
        elif node._retain:
            node._accumulate(g)
        if create_graph:
            ctx = _GraphContext(node)
        elif node._saved is RELEASED:
            if context is None:
                raise RuntimeError(_released_message(node))
            ctx = context(node)
        else:
            ctx = node
        in_grads = check_gradients(node, node._gate.backward(ctx, g), create_graph)
        if _Anomaly.threads and _Anomaly.local.enabled:
            _anomaly_backward(node, g, in_grads)
        if observe is not None:
            observe(node, g, in_grads)
        if not retain_graph:
            node._saved = RELEASED
        for inp, gi in zip(node.inputs, in_grads):
            if gi is not None and inp.requires_grad:
                reach(inp, gi)
    for leaf in leaves:
        g = pending.pop(leaf)
        if leaf._hooks:
            g = _run_hooks(leaf, g)
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


#: Set by ``cr.jit`` while it traces a call: ``observer(root, grad, retain_graph, create_graph)``
#: is called in place of each ``backward()`` (it records it, then runs :func:`run_backward`).
_backward_observer: Callable[[Node, Any, bool, bool], None] | None = None


def backward(
    root: Node, grad: Any = None, *, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Sweep ``root``'s circuit backward, accumulating gradients into leaves' ``.grad``."""
    if _backward_observer is not None:  # cr.jit is tracing a call: it records, then runs this
        _backward_observer(root, grad, retain_graph, create_graph)
    else:
        run_backward(root, grad, retain_graph, create_graph)


def run_backward(root: Node, grad: Any, retain_graph: bool, create_graph: bool) -> None:
    """The sweep behind :func:`backward`."""
    seed = _prepare_seed(root, grad, create_graph)
    if create_graph or _marked or _Anomaly.threads:
        _sweep_recording(
            create_graph, _reference_sweep, root, seed, retain_graph or create_graph, create_graph
        )
    else:
        _sweep_recording(False, _tuned_sweep, root, seed, retain_graph)


def sweep_all(
    root: Node, seed: Any, observe: Any, context: Callable[[Node], Any] | None = None
) -> None:
    """A full backward sweep that keeps the circuit and touches no ``.grad``, reporting each
    step to ``observe`` (see :func:`_reference_sweep`); used by the readers of a circuit, which
    give ``context`` to recompute what an earlier backward released."""
    _sweep_recording(False, _reference_sweep, root, seed, True, False, set(), observe, context)


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
        create_graph,
        _reference_sweep,
        output,
        seed,
        retain_graph or create_graph,
        create_graph,
        set(inputs),
    )
    result = []
    for inp in inputs:
        g = found.get(inp)
        if g is None:
            g = inp._constant(inp._zeros_like()) if create_graph else inp._zeros_like()
        result.append(g)
    return tuple(result)


def _sweep_recording(recording: bool, sweep: Callable, *sweep_args: Any) -> Any:
    """Run ``sweep`` with grad mode on only when the backward pass itself is recorded
    (``create_graph``), restoring the calling thread's mode afterwards. A plain function, not a
    context manager object: this runs once per training step."""
    previous = _GradMode.enabled
    _GradMode.enabled = recording
    try:
        return sweep(*sweep_args)
    finally:
        _GradMode.enabled = previous
