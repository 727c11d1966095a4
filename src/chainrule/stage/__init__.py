"""Staged backprop as code: ``cr.stage(f, *example_inputs)`` writes ``f``'s forward and backward
passes as straight-line NumPy, one line per stage, and compiles that source once.

The notes' practical advice is to break the forward pass into simple stages and to write the
backward pass as the same stages in reverse, ``dvar`` by ``dvar``, with ``+=`` where a value forks.
This package does exactly that from a trace of ``f``, and knows no derivative: the forward stages
are each gate's forward code (:mod:`.code`), and the backward stages are what each gate's own
``backward`` records when run under ``create_graph`` (:mod:`.record`), written with the forward
code of the gates it recorded (:mod:`.program`), simplified (:mod:`.simplify`) and, for arrays,
lowered into buffers allocated once (:mod:`.lower`). A user's gate stages as soon as its backward
is written in chainrule operations.

Modules: ``capture`` (trace ``f`` and its locals' names), ``code`` (a gate as an expression,
literals, names), ``record`` (a gate's recorded backward as expressions), ``simplify``,
``program`` (forward and backward stages), ``lower`` (buffers), ``staged`` (compile, call).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..engine import Node
from ..tensor import Tensor
from .capture import trace_function
from .code import Namespace, Site, StageError, identifier
from .program import write_program
from .staged import Staged, compile_program

__all__ = ["Site", "StageError", "Staged", "stage"]


def stage(
    f: Callable, *example_inputs: Any, wrt: int | Sequence[int] = 0, buffers: bool | None = None
) -> Staged:
    """Trace ``f`` once at ``example_inputs`` and return it as staged NumPy code.

    The result is called like ``f`` and returns ``(value, gradients)`` with respect to the
    inputs at positions ``wrt`` (a tuple of gradients, or one gradient for an int ``wrt``).
    ``f`` takes arrays (as Tensors) and returns a single-number Tensor, like :func:`grad`.
    ``staged.source`` is the generated code: forward stages then backward stages, named after
    ``f``'s own variables, each backward line commented with the forward stage it differentiates.
    The backward stages are each gate's own ``backward``, recorded: staged gradients are the
    engine's, operation for operation.

    Random gates (dropout's mask) draw at each call of the staged function from the generator
    they were traced with, bound live, so calls continue its stream as eager calls would;
    tracing is itself a call and draws once.

    ``buffers`` (default: on for arrays) makes array stages write into buffers allocated once,
    with ``out=``; the returned arrays are then those buffers, overwritten by the next call.

    Limits: the code is specialised to the example shapes and dtypes (other inputs raise
    :class:`StageError`: stage again); Python control flow in ``f`` is fixed at trace time, and
    comparing, converting or testing a traced tensor while tracing raises :class:`StageError`
    (use masks: ``cr.where(cr.greater(x, 0), ...)``); values computed from integer inputs outside
    the circuit are frozen; a gate whose backward leaves chainrule (NumPy on saved arrays) is
    refused by name; a staged function with buffers runs one call at a time.
    """
    single = isinstance(wrt, (int, np.integer))
    positions = (int(wrt),) if single else tuple(int(w) for w in wrt)
    n = len(example_inputs)
    for w in positions:
        if not -n <= w < n:
            raise StageError(f"stage: wrt position {w} is out of range for {n} input(s)")
    positions = tuple(w % n for w in positions)
    if len(set(positions)) != len(positions):
        raise StageError(f"stage: repeated position in wrt={wrt!r}")
    names = _parameter_names(f, n)
    inputs = []
    for i, value in enumerate(example_inputs):
        if isinstance(value, Node) and identifier(value.name):
            names[i] = value.name
        array = np.asarray(value.data if isinstance(value, Node) else value)
        if array.dtype.kind not in "fiub":
            raise StageError(f"stage: input '{names[i]}' has unsupported dtype {array.dtype}")
        if i in positions and array.dtype.kind != "f":
            raise StageError(
                f"stage: input '{names[i]}' (wrt position {i}) has dtype {array.dtype}; only "
                "floating inputs have gradients"
            )
        inputs.append(Tensor(array, requires_grad=array.dtype.kind == "f"))
    out, hints = trace_function(f, inputs)
    fname = identifier(getattr(f, "__name__", "")) or "f"
    namespace = Namespace()
    arg_names = [namespace.claim(name) for name in names]
    for name, t in zip(arg_names, inputs):
        namespace.name_input(t.data, name)
    func_name = namespace.claim(f"{fname}_staged")
    program = write_program(
        fname, inputs, arg_names, positions, out, hints, buffers is not False, namespace
    )
    fn, source = compile_program(program, func_name, fname, arg_names, inputs, single)
    shapes = [t.data.shape for t in inputs]
    dtypes = [t.data.dtype for t in inputs]
    return Staged(fn, source, arg_names, shapes, dtypes, positions, single)


def _parameter_names(f: Callable, n: int) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
    return names + [f"x{i}" for i in range(len(names), n)]
