"""Watching one eager call of a function: what it computed, and what else it did.

``cr.jit`` stages a call from its record (the circuit the call made) plus the few effects a
training step has beyond its circuit: which ``backward()`` it ran, which ``.grad`` it reset, which
modules it called (and in which mode). The call itself runs eagerly, unchanged, so its results
are exactly the engine's; the tracer only listens. Whatever it sees that staged code could not
repeat (a traced value read as a Python number, ``.grad`` read or assigned by hand, a second
backward) is noted as a problem with the user's line, and the caller runs that signature eagerly.

Listening means installing observers while some call is traced: the engine's
``_backward_observer``, ``Tensor._staging`` (reads of traced values), ``Module._call_observer``,
a logging ``.grad`` descriptor on :class:`~chainrule.engine.Node` and a logging ``_init_node`` on
:class:`~chainrule.tensor.Tensor` (which leaves the call created). They are installed once, while
any thread traces, and hand each event to the tracer of the thread it happens in (the innermost,
when a traced function calls another jitted one); other threads pass straight through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import engine
from ..engine import Node, _user_site, enable_grad, run_backward
from ..nn.module import Module
from ..tensor import Tensor
from .errors import JitError

__all__ = ["Backward", "Tracer", "call_traced", "detached", "has_hooks", "tracing"]

_GRAD_SLOT = Node.__dict__["grad"]  # the slot behind .grad, wrapped while a call is traced
_LOCK = threading.Lock()


@dataclass
class Backward:
    """A ``backward()`` the traced call ran."""

    root: Node
    seeded: bool  # called with an explicit grad=
    create_graph: bool
    site: str


@dataclass
class Tracer:
    """What one traced call did, besides computing its circuit (see the module docstring)."""

    backwards: list[Backward] = field(default_factory=list)
    #: ``.grad`` effects in order: ("reset", node, None or "zeros") and ("backward", index)
    events: list[tuple] = field(default_factory=list)
    modules: dict[int, Module] = field(default_factory=dict)
    created: dict[int, Node] = field(default_factory=dict)  # leaves the call made
    sites: dict[int, str] = field(default_factory=dict)  # where each created array leaf was made
    problems: list[str] = field(default_factory=list)
    in_backward: bool = False  # inside backward() or a node's creation: .grad is the engine's
    strict: bool = False  # raise at the first problem (cr.jit(..., strict=True))
    inference: bool = False  # called under no_grad: recorded all the same, for staging

    def problem(self, text: str) -> None:
        """Note something staged code could not repeat, with the user's line (raise it at once
        when strict)."""
        text = f"{text} (at {_user_site().splitlines()[0]})"
        if self.strict:
            raise JitError(f"cr.jit: cannot stage: {text}")
        self.problems.append(text)

    # --- the observers ----------------------------------------------------------------------
    def on_backward(self, root: Node, grad: Any, retain_graph: bool, create_graph: bool) -> None:
        if self.inference:  # as eager under no_grad: nothing was recorded to backpropagate
            raise RuntimeError(
                "backward() on a value that does not require grad: the jitted function was "
                "called with grad mode off (cr.no_grad)"
            )
        site = _user_site().splitlines()[0]
        self.backwards.append(Backward(root, grad is not None, create_graph, site))
        self.events.append(("backward", len(self.backwards) - 1))
        self.in_backward = True
        try:  # the record is kept: staging reads each gate's backward from it
            run_backward(root, grad, True, create_graph)
        finally:
            self.in_backward = False

    def on_read(self, t: Tensor, what: str) -> None:
        self.problem(f"{what} reads a traced value as a Python value")

    def on_module(self, module: Module) -> None:
        self.modules.setdefault(id(module), module)
        if has_hooks(module):
            self.problem(
                f"{type(module).__name__} has forward or backward hooks, which staged code "
                "would not call"
            )

    def on_get_grad(self, node: Node) -> None:
        if not self.in_backward:
            self.problem(".grad is read inside the function (opt.step() or gradient inspection)")

    def on_set_grad(self, node: Node, value: Any) -> None:
        if self.in_backward:
            return
        if value is None:
            self.events.append(("reset", node, None))
        elif (
            type(value) is np.ndarray
            and value.shape == np.shape(node._data)
            and value.dtype == np.asarray(node._data).dtype
            and not value.any()
        ):
            self.events.append(("reset", node, "zeros"))
        else:
            self.problem(".grad is assigned inside the function")

    def on_init_node(self, node: Node, *args: Any) -> None:
        self.in_backward, outer = True, self.in_backward  # a new node's .grad = None is no reset
        try:
            Node._init_node(node, *args)
        finally:
            self.in_backward = outer
        if len(args) < 4 or args[3] is None:  # a leaf (no gate)
            self.created[id(node)] = node
            self.sites[id(node)] = _user_site().splitlines()[0]


def has_hooks(module: Module) -> bool:
    """Whether ``module`` has hooks, which staged code would not call."""
    return bool(
        module._forward_pre_hooks
        or module._forward_hooks
        or module._backward_pre_hooks
        or module._backward_hooks
    )


class _Tracing(threading.local):
    """The tracers of the calling thread, innermost last."""

    def __init__(self) -> None:
        self.stack: list[Tracer] = []


_tracing = _Tracing()
_installed = 0  # threads tracing now; the observers are installed while it is positive
_previous_staging: Callable | None = None  # what Tensor._staging was (cr.stage's refusal)


def _current() -> Tracer | None:
    stack = _tracing.stack
    return stack[-1] if stack else None


def _backward(root: Node, grad: Any, retain_graph: bool, create_graph: bool) -> None:
    tracer = _current()
    if tracer is None:
        run_backward(root, grad, retain_graph, create_graph)
    else:
        tracer.on_backward(root, grad, retain_graph, create_graph)


def _read(t: Tensor, what: str) -> None:
    tracer = _current()
    if tracer is not None:
        tracer.on_read(t, what)
    elif _previous_staging is not None:
        _previous_staging(t, what)


def _module(module: Module) -> None:
    tracer = _current()
    if tracer is not None:
        tracer.on_module(module)


def _get_grad(node: Node) -> Any:
    tracer = _current()
    if tracer is not None:
        tracer.on_get_grad(node)
    return _GRAD_SLOT.__get__(node, type(node))


def _set_grad(node: Node, value: Any) -> None:
    _GRAD_SLOT.__set__(node, value)
    tracer = _current()
    if tracer is not None:
        tracer.on_set_grad(node, value)


def _init_node(node: Node, *args: Any) -> None:
    tracer = _current()
    if tracer is None:
        Node._init_node(node, *args)
    else:
        tracer.on_init_node(node, *args)


_LOGGED_GRAD = property(_get_grad, _set_grad, doc=_GRAD_SLOT.__doc__)


@contextmanager
def tracing(tracer: Tracer) -> Iterator[Tracer]:
    """Hand the calling thread's events to ``tracer`` for the duration of the block."""
    global _installed, _previous_staging
    with _LOCK:
        if _installed == 0:
            _previous_staging = Tensor._staging
            engine._backward_observer = _backward
            Tensor._staging = _read
            Module._call_observer = _module
            Node.grad = _LOGGED_GRAD
            Tensor._init_node = _init_node
        _installed += 1
    _tracing.stack.append(tracer)
    try:
        yield tracer
    finally:
        _tracing.stack.pop()
        with _LOCK:
            _installed -= 1
            if _installed == 0:
                del Tensor._init_node
                Node.grad = _GRAD_SLOT
                Module._call_observer = None
                Tensor._staging = _previous_staging
                engine._backward_observer = None


def call_traced(fn: Callable, args: tuple, kwargs: dict, tracer: Tracer) -> tuple[Any, Any]:
    """``fn(*args, **kwargs)`` under ``tracer``, with the frame of ``fn`` (for its local
    names), as :func:`chainrule.stage.capture` catches it. A call made under ``no_grad`` is
    recorded all the same (staging needs the circuit): its caller detaches what it returns."""
    from ..stage.capture import call_keeping_frame

    with tracing(tracer), enable_grad():
        return call_keeping_frame(fn, args, kwargs)


def detached(value: Any) -> Any:
    """``value`` with every tensor in it (in tuples, lists and dicts) detached."""
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(detached(v) for v in value)
    if isinstance(value, dict):
        return {k: detached(v) for k, v in value.items()}
    return value
