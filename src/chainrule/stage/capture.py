"""Tracing ``f`` once: its circuit, and the names of its local variables for the stages.

The names are read from ``f``'s own frame after it returns. The frame is caught by a profile
hook that is installed only for the instant of entering ``f`` and removes itself there, and only
when no profiler is running: an active profiler is never replaced (the stages then take names
derived from their gates).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..engine import Node, enable_grad
from ..tensor import Tensor
from .code import StageError

__all__ = ["call_keeping_frame", "local_names", "trace_function"]


def call_keeping_frame(f: Callable, args: Any, kwargs: dict | None = None) -> tuple[Any, Any]:
    """``f(*args, **kwargs)`` and ``f``'s frame (None when it cannot be caught without a
    profiler)."""
    kwargs = kwargs or {}
    code = getattr(f, "__code__", None)
    if code is None or sys.getprofile() is not None:
        return f(*args, **kwargs), None
    caught: list = []

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code:
            caught.append(frame)
            sys.setprofile(None)

    sys.setprofile(hook)
    try:
        out = f(*args, **kwargs)
    finally:
        if sys.getprofile() is hook:
            sys.setprofile(None)
    return out, (caught[0] if caught else None)


def local_names(frame: Any) -> dict[int, str]:
    """The names of the nodes among a finished frame's locals, by object id (a node's first
    name wins)."""
    names: dict[int, str] = {}
    if frame is not None:
        for name, value in frame.f_locals.items():
            if isinstance(value, Node) and id(value) not in names:
                names[id(value)] = name
    return names


def refuse_reading(t: Tensor, what: str) -> None:
    """What ``cr.stage`` does when ``f`` reads a traced value as a Python value: refuse it."""
    raise StageError(
        f"stage: {what} of a traced tensor of shape {t.shape} is data-dependent control flow, "
        "which staged code cannot follow (it would be fixed at trace time); write it with "
        "cr.where, cr.maximum, cr.relu or cr.clip, or use the eager engine"
    )


def trace_function(f: Callable, inputs: list[Tensor]) -> tuple[Tensor, dict[int, str]]:
    """``f`` called on ``inputs`` with recording on: its single-number output and its locals'
    names. Reading a traced value while tracing (``if x > 0``) is refused: staged code could
    not follow it."""
    previous = Tensor._staging
    Tensor._staging = refuse_reading
    try:
        with enable_grad():
            out, frame = call_keeping_frame(f, inputs)
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
    names = local_names(frame)
    del frame
    return out, names
