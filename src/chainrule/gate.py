"""Gate: the unit of a circuit. It computes its output and turns an output gradient into input
gradients; nothing else in chainrule knows a derivative.

Subclass it with two static methods, ``forward(ctx, *inputs, **options)`` and
``backward(ctx, grad)``, and call ``YourGate.apply(...)``. Built-in gates are written the same way.
"""

from __future__ import annotations

import functools
from operator import attrgetter
from typing import Any, ClassVar

from .engine import (
    GateError,
    Node,
    _Anomaly,
    _anomaly_forward,
    _GradMode,
    _GraphContext,
    check_gradients,
    is_complex,
)

__all__ = ["Gate", "GateError"]


class _Scratch:
    """Throwaway ctx for a gate applied to plain numbers or arrays: nothing is recorded."""

    def save_for_backward(self, *values: Any) -> None:
        self.saved_tensors = values


class Gate:
    """Base class of every gate, built-in or user-defined.

    The contract of ``forward(ctx, *inputs, **options)`` and ``backward(ctx, grad)``:

    - ``forward`` gets raw data (floats or ndarrays) and returns the output; ``ctx.inputs``,
      ``ctx.options`` and ``ctx.save_for_backward(...)`` are available. It may not return complex
      values.
    - ``backward`` returns one gradient per input (None where none is needed), each of its
      input's shape and dtype (a real number for ``Value``), never complex; a user's gate is
      checked for this at its boundary (:func:`chainrule.engine.check_gradients`).
    - **Second derivatives** (``create_graph``, ``cr.hessian``, ``cr.grad(cr.grad(f))``):
      backward then receives nodes (``grad`` and every saved input or output), so write it with
      operators and chainrule functions (``grad * 3 * x ** 2``, ``cr.exp``), never NumPy on
      ``.data``: a raw array returned under ``create_graph`` is refused with the gate's name. A
      value saved in forward that is *derived* from the inputs (``3 * x * x``) is rebuilt by
      running forward again on the input nodes, which works when forward is written with
      operators too; otherwise the backward is refused with the gate's name. Saving the inputs
      themselves and computing derived values in backward always works.

    Class attributes describe the gate to the readers of a circuit (diagrams, explanations, staged
    code): ``name`` (defaults to the lower-cased class name), ``symbol`` (how a diagram labels it,
    defaults to ``name``) and ``pattern`` (the notes' name for its backward behaviour, if any).

    Staged code (``cr.stage``) needs at most one more thing, ``forward_code``: the forward as one
    NumPy expression, a template such as ``"np.tanh({0})"`` or ``"{0} @ {1}"`` (inputs by
    position, options by name), or a static method ``(site) -> str`` for a variable number of
    inputs. It may call a function of the gate's own module by name
    (``"conv2d_forward({0}, {1}, stride={stride})"``), which the staged module binds. Without it
    the gate stages as a call of its own ``forward``. The backward is never written twice: staged
    code and explain read what ``backward`` records when its context holds nodes, so write it with
    chainrule operations (operators, ``cr.where``, masks such as ``cr.greater``) on
    ``ctx.saved_tensors`` and the gradient; NumPy on saved arrays is refused by name there.
    """

    name: ClassVar[str] = "gate"
    symbol: ClassVar[str] = "gate"
    pattern: ClassVar[str | None] = None
    _user: ClassVar[bool] = False  # defined outside chainrule: checked at its boundary

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.lower()
        if "symbol" not in cls.__dict__:
            cls.symbol = cls.name
        if abstract:
            return
        for method in ("forward", "backward"):
            if not callable(getattr(cls, method, None)):
                raise TypeError(f"gate '{cls.name}' must define a static method '{method}'")
        if not cls.__module__.startswith("chainrule."):
            _check_at_the_boundary(cls)

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Any:
        """Run the gate on ``inputs`` and, if any input requires grad, record it in the circuit.

        Inputs that are not nodes (numbers, arrays) are constants. With no node among the inputs
        the gate just computes and returns a plain result.
        """
        front = None
        requires_grad = constants = False
        for inp in inputs:
            if isinstance(inp, Node):
                if inp._front is not front:
                    if front is not None:
                        raise GateError(
                            f"gate '{cls.name}': cannot mix {front.__name__} and "
                            f"{inp._front.__name__} inputs"
                        )
                    front = inp._front
                if inp.requires_grad:
                    requires_grad = True
            else:
                constants = True
        for key, value in options.items():
            if is_complex(value):
                raise GateError(
                    f"gate '{cls.name}': option {key}={value!r} is complex; chainrule "
                    "differentiates real functions only"
                )
        if front is None:
            return cls.forward(_Scratch(), *inputs, **options)
        if constants:  # numbers and arrays become constant nodes: a wire for each input slot
            inputs = tuple([i if isinstance(i, Node) else front._constant(i) for i in inputs])
        return record_nodes(cls, front, inputs, requires_grad and _GradMode.enabled, options)


def _check_at_the_boundary(cls: type[Gate]) -> None:
    """Wrap a user's gate so that what crosses its boundary is checked: forward may not return
    complex values, and backward's gradients go through :func:`check_gradients` (one per input,
    each of its input's shape and dtype, real; nodes under ``create_graph``). Built-in gates are
    trusted (and tested) instead, so the hot path pays nothing for them."""
    name = cls.name
    cls._user = True
    if "forward" in cls.__dict__:
        forward = cls.forward

        @functools.wraps(forward)
        def checked_forward(ctx: Any, *inputs: Any, **options: Any) -> Any:
            out = forward(ctx, *inputs, **options)
            if is_complex(out):
                raise GateError(
                    f"gate '{name}': forward returned complex values; chainrule differentiates "
                    "real functions only"
                )
            return out

        cls.forward = staticmethod(checked_forward)
    if "backward" in cls.__dict__:
        backward = cls.backward

        @functools.wraps(backward)
        def checked_backward(ctx: Any, grad: Any) -> tuple:
            graph = isinstance(ctx, _GraphContext)
            node = ctx._node if graph else ctx
            return check_gradients(node, backward(ctx, grad), graph)

        cls.backward = staticmethod(checked_backward)


_data = attrgetter("_data")


def record_nodes(
    gate: type[Gate], front: type, inputs: tuple, recording: bool, options: dict
) -> Any:
    """Make the output node of ``gate`` over ``inputs``, all of them nodes of front end ``front``.

    This is the engine's cost per gate, so it does only what every node needs. The new node is
    the gate's ctx during forward (``ctx.inputs``, ``ctx.options`` and ``save_for_backward``
    work); when not ``recording`` its cache is dropped at once and it becomes a constant.
    """
    out = front.__new__(front)
    out._init_node(None, None, recording, gate if recording else None, inputs, options, ())
    if len(inputs) == 1:  # most gates: spare the * (and **) argument packing
        x = inputs[0]._data
        data = gate.forward(out, x, **options) if options else gate.forward(out, x)
    elif options:
        data = gate.forward(out, *map(_data, inputs), **options)
    else:
        data = gate.forward(out, *map(_data, inputs))
    if type(data) is not front._data_type:
        raw_out, data = data, front._coerce(data, gate)
        if out._saved:  # a saved output must stay the output (create_graph maps it to this node)
            out._saved = tuple(data if v is raw_out else v for v in out._saved)
    out._data = data
    if _Anomaly.threads and _Anomaly.local.enabled:  # detect_anomaly is on in some thread
        _anomaly_forward(out, gate)
    if not recording:  # a constant: keep neither the cache nor the inputs alive
        out._saved = None
        out.inputs = ()
    return out
