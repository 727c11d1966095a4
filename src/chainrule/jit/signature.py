"""A call's signature: what a staged version of a function is specialised to.

Arrays and tensors among the arguments (also inside tuples and lists) are the staged code's
inputs: only their shapes and dtypes (and, for tensors, whether they require grad and are
leaves) enter the signature, with which arguments are the same object. Every other argument
is static: its value (or, when unhashable, its identity) enters the signature, as ``jax.jit``'s
static arguments do. Whether grad mode is on enters it too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import is_grad_enabled
from ..tensor import Tensor

__all__ = ["Call", "CallReader"]


@dataclass
class Call:
    """One call's arguments as the staged code sees them."""

    arrays: list  # the array and tensor arguments, in order
    names: list[str]  # their names, for the staged code
    key: tuple  # the signature
    statics: list  # the static arguments (kept alive: their identity may be in the key)


class CallReader:
    """Reads the calls of one function (its signature is inspected once)."""

    def __init__(self, fn: Callable) -> None:
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self.signature = None
        plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = list(self.signature.parameters.values()) if self.signature else []
        self.positional: list[str] = []  # leading plain parameters: the common call's names
        for p in params:
            if p.kind not in plain:
                break
            self.positional.append(p.name)

    def read(self, args: tuple, kwargs: dict) -> Call:
        """The signature of a call and its array arguments."""
        call = Call([], [], (), [])
        if not kwargs and len(args) == len(self.positional):
            named: Any = zip(self.positional, args)
        else:
            named = self._bind(args, kwargs)
        parts = tuple([_part(value, name, call) for name, value in named])
        first: dict[int, int] = {}
        aliases = tuple([first.setdefault(id(a), i) for i, a in enumerate(call.arrays)])
        call.key = (parts, aliases, is_grad_enabled())
        return call

    def _bind(self, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
        if self.signature is None:
            return [(f"x{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        named: list[tuple[str, Any]] = []
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                named.extend((f"{name}{i}", v) for i, v in enumerate(value))
            elif kind is inspect.Parameter.VAR_KEYWORD:
                named.extend(value.items())
            else:
                named.append((name, value))
        return named


def _part(value: Any, name: str, call: Call) -> tuple:
    if isinstance(value, Tensor):
        call.arrays.append(value)
        call.names.append(name)
        data = value.data
        return ("T", data.shape, data.dtype.str, value.requires_grad, value.is_leaf)
    if type(value) is np.ndarray:
        call.arrays.append(value)
        call.names.append(name)
        return ("A", value.shape, value.dtype.str)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_part(v, f"{name}{i}", call) for i, v in enumerate(value)))
    call.statics.append(value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return ("V", type(value), value)
