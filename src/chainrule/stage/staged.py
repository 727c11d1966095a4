"""The staged function: the generated module's source, compiled once, and its callable."""

from __future__ import annotations

import linecache
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any

import numpy as np

from ..engine import Node
from .code import StageError
from .program import Program

__all__ = ["Staged", "compile_module", "compile_program"]

_compiled = count()


class Staged:
    """A function staged by :func:`chainrule.stage`: call it with inputs of the traced shapes
    and dtypes to get ``(value, gradients)``; ``source`` is the code it runs."""

    def __init__(
        self,
        fn: Callable,
        source: str,
        names: Sequence[str],
        shapes: Sequence[tuple],
        dtypes: Sequence[np.dtype],
        wrt: tuple,
        single: bool,
    ) -> None:
        self._fn = fn
        self.source = source
        self.names = tuple(names)
        self.shapes = tuple(shapes)
        self.dtypes = tuple(dtypes)
        self.wrt = wrt[0] if single else wrt
        self._spec = tuple(zip(self.shapes, self.dtypes))

    def __call__(self, *inputs: Any) -> tuple:
        """``(value, gradients)`` at ``inputs``: one gradient per ``wrt`` position (a tuple), or
        a single gradient when ``wrt`` was one int. Returned arrays are the staged function's
        own buffers, overwritten by its next call (copy them to keep them)."""
        if len(inputs) != len(self._spec):
            raise StageError(
                f"staged function takes {len(self._spec)} input(s) ({', '.join(self.names)}), "
                f"got {len(inputs)}"
            )
        args = list(inputs)
        for i, (a, (shape, dtype)) in enumerate(zip(inputs, self._spec)):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                args[i] = self._check(i, a)
        return self._fn(*args)

    def _check(self, i: int, value: Any) -> np.ndarray:
        shape, dtype = self._spec[i]
        array = np.asarray(value.data if isinstance(value, Node) else value)
        if array.dtype.kind in "iub" and dtype.kind == "f" and array.shape == shape:
            array = array.astype(dtype)
        if array.shape != shape:
            raise StageError(
                f"staged input '{self.names[i]}' has shape {array.shape} but f was traced with "
                f"shape {shape}; stage f again for new shapes"
            )
        if array.dtype != dtype:
            raise StageError(
                f"staged input '{self.names[i]}' has dtype {array.dtype} but f was traced with "
                f"{dtype}; stage f again (or convert the input)"
            )
        return array

    def __repr__(self) -> str:
        spec = ", ".join(
            f"{n}: {d}{list(s)}" for n, s, d in zip(self.names, self.shapes, self.dtypes)
        )
        return f"<staged function ({spec}), wrt={self.wrt!r}>"


def compile_program(
    program: Program, func_name: str, fname: str, arg_names: list, inputs: list, single: bool
) -> tuple[Callable, str]:
    """The staged function returning ``(value, gradients)`` and its module's source."""
    results = program.gradients
    grads = (
        results[0]
        if single
        else "(" + ", ".join(results) + ("," if len(results) == 1 else "") + ")"
    )
    program.body.emit(f"return {program.output}, {grads}")
    spec = ", ".join(f"{n}: {t.data.dtype}{list(t.data.shape)}" for n, t in zip(arg_names, inputs))
    return compile_module(program, func_name, f"{fname} staged by chainrule at {spec}", arg_names)


def compile_module(
    program: Program, func_name: str, header: str, params: list[str]
) -> tuple[Callable, str]:
    """The module's source (``header`` as a comment, the constants it binds, its buffers, the
    function ``func_name(params)`` whose body ``program`` holds, return included) and that
    function compiled, in a namespace holding only NumPy, the trace's constants, the gates'
    kernels and the random generators they draw from."""
    body = program.body
    lines = [f"# {header}"]
    for name, value in program.namespace.constants.items():
        if name in program.namespace.state:
            lines.append(
                f"# {name}: its owner's own {value.dtype} array of shape {value.shape}, "
                "read (and updated) in place at each call"
            )
        elif isinstance(value, (np.ndarray, np.generic)):
            lines.append(
                f"# {name}: a constant {np.asarray(value).dtype} array of shape "
                f"{np.shape(value)} from the trace"
            )
        elif isinstance(value, np.random.Generator):
            lines.append(f"# {name}: the traced np.random.Generator, live: each call draws on")
    for name, (shape, dtype) in body.buffers.items():
        suffix = "" if dtype == np.float64 else f", np.{dtype.name}"
        lines.append(f"{name} = np.empty({shape!r}{suffix})")
    lines.append(f"def {func_name}({', '.join(params)}):")
    code = [("    " + c, note) for c, note in body.lines]
    width = min(max((len(c) for c, note in code if note), default=0), 60)
    for c, note in code:
        lines.append(f"{c.ljust(width)}  # {note}" if note else c)
    source = "\n".join(lines) + "\n"
    filename = f"<chainrule.stage {func_name} #{next(_compiled)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"np": np, "__builtins__": {}}
    namespace.update(program.namespace.constants)
    exec(compile(source, filename, "exec"), namespace)  # generated from the trace, not user text
    return namespace[func_name], source
