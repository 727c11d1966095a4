"""Check a hand-written layer: the course's ``forward(x, w, ...) -> (out, cache)`` and
``backward(dout, cache) -> (dx, dw, ...)`` pair, in NumPy.

:func:`check_layer` runs the student's pair on the given inputs with a random upstream gradient,
then computes reference gradients of the same forward: by chainrule's backward when the forward
can be traced with Tensors (NumPy's functions dispatch to chainrule's gates), else by centered
differences of the student's forward (chainrule's :func:`~chainrule.check.numerical_grad`). Each
gradient gets one row: the relative error with the course's bands, the worst element, and a hint
when the mistake has a recognizable shape (a factor of 2, a sign, a missing transpose, a sum over
the wrong axis). It reports; it never prints the expected gradient.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .check import numerical_grad
from .engine import Node
from .tensor import Tensor

__all__ = ["BANDS", "GradientRow", "LayerCheck", "check_layer"]

BANDS = (
    (1e-7, "good"),
    (1e-4, "ok only with kinks (relu, max)"),
    (1e-2, "suspicious"),
    (np.inf, "wrong"),
)
"""The course's reading of a relative error: below 1e-7 good; below 1e-4 acceptable only for a
function with kinks; below 1e-2 uncomfortable; above, the gradient is wrong."""


def band(error: float) -> str:
    """The course's verdict for a relative error (see :data:`BANDS`)."""
    if not np.isfinite(error):
        return "wrong"
    return next(label for limit, label in BANDS if error < limit)


def relative_errors(mine: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The course's elementwise relative error |a - b| / max(1e-8, |a| + |b|)."""
    return np.abs(mine - reference) / np.maximum(1e-8, np.abs(mine) + np.abs(reference))


@dataclass
class GradientRow:
    """One gradient's verdict: its name (``dx``), its relative error, the course's band, the
    worst element (index, the student's value, the reference value) and a hint (or '')."""

    name: str
    error: float
    verdict: str
    worst: tuple = ()
    mine: float = float("nan")
    reference: float = float("nan")
    hint: str = ""

    @property
    def ok(self) -> bool:
        """True when the error is below 1e-4 (the course's 'usually okay')."""
        return self.verdict in (BANDS[0][1], BANDS[1][1])


@dataclass
class LayerCheck:
    """The rows of a layer check, printable as a table; ``ok`` when every row is."""

    layer: str
    method: str
    rows: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every gradient's relative error is below 1e-4."""
        return all(row.ok for row in self.rows)

    def __str__(self) -> str:
        lines = [f"check_layer {self.layer} (reference: {self.method})"]
        header = ("gradient", "rel. error", "verdict", "worst element", "yours", "reference")
        table = [header]
        for row in self.rows:
            error = "shape" if np.isnan(row.error) else f"{row.error:.2e}"
            where = str(tuple(int(i) for i in row.worst)) if row.worst else ""
            shown = not np.isnan(row.mine)
            values = (f"{row.mine:.6g}", f"{row.reference:.6g}") if shown else ("", "")
            table.append((row.name, error, row.verdict, where, *values))
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        for r in table:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        for row in self.rows:
            if row.hint:
                lines.append(f"  hint for {row.name}: {row.hint}")
        lines.append("all gradients agree" if self.ok else "some gradients disagree")
        return "\n".join(lines)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _names(forward: Callable, count: int) -> list[str]:
    try:
        params = list(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        params = []
    return params if len(params) >= count else [f"input{i}" for i in range(count)]


def _output(result: Any, layer: str) -> Any:
    if isinstance(result, tuple) and len(result) == 2:
        return result[0]
    got = f"a {type(result).__name__}" + (f" of {len(result)}" if isinstance(result, tuple) else "")
    raise TypeError(f"check_layer: {layer}'s forward must return (out, cache), got {got}")


def _reference_by_chainrule(forward: Callable, inputs: list, slots: list, out, dout) -> Any:
    """Reference gradients by tracing the forward with Tensors, or None if it cannot be traced
    (or traces to a different output)."""
    args = [
        Tensor(np.array(v), requires_grad=True) if i in slots else v for i, v in enumerate(inputs)
    ]
    try:
        traced = _output(forward(*args), "forward")
        if not isinstance(traced, Node) or not np.allclose(
            traced.data, out, rtol=1e-10, atol=1e-12
        ):
            return None
        traced.backward(dout)
    except Exception:  # noqa: BLE001 - any forward that cannot be traced falls back to differences
        return None
    return [np.zeros_like(inputs[i]) if args[i].grad is None else args[i].grad for i in slots]


def _reference_by_differences(forward: Callable, inputs: list, slots: list, dout) -> list:
    grads = []
    for i in slots:

        def projected(value, i=i):
            args = list(inputs)
            args[i] = np.asarray(value.data if isinstance(value, Node) else value)
            return float(np.sum(np.asarray(_output(forward(*args), "forward")) * dout))

        grads.append(numerical_grad(projected, np.array(inputs[i], dtype=np.float64), eps=1e-5))
    return grads


def check_layer(
    forward: Callable,
    backward: Callable,
    *inputs: Any,
    seed: int = 0,
    show: bool = True,
) -> LayerCheck:
    """Check ``backward`` against the gradients of ``forward`` at ``inputs``.

    ``forward(*inputs)`` returns ``(out, cache)``; ``backward(dout, cache)`` returns the
    gradients of the floating-point array inputs, in order (one array, or a tuple). Non-array
    inputs (a ``bn_param`` dict) are passed through. Prints the report (``show``) and returns it.
    """
    layer = getattr(forward, "__name__", "layer").removesuffix("_naive").removesuffix("_forward")
    inputs = [np.array(v, dtype=np.float64) if _is_array(v) else v for v in inputs]
    slots = [i for i, v in enumerate(inputs) if _is_array(v)]
    if not slots:
        raise ValueError("check_layer: no floating-point array among the inputs to differentiate")
    result = forward(*[v.copy() if _is_array(v) else v for v in inputs])
    out, cache = _output(result, layer), result[1]
    out = np.asarray(out, dtype=np.float64)
    # a stream of its own: the same seed also makes inputs (the CLI's), and an upstream
    # gradient equal to an input would hide mistakes (x.T @ x is symmetric)
    dout = np.random.default_rng([seed, 1]).standard_normal(out.shape)
    grads = backward(dout.copy(), cache)
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    names = _names(forward, len(inputs))
    if len(grads) != len(slots):
        raise ValueError(
            f"check_layer: backward returned {len(grads)} gradient(s) but the forward has "
            f"{len(slots)} array input(s) ({', '.join(names[i] for i in slots)})"
        )
    reference = _reference_by_chainrule(forward, inputs, slots, out, dout)
    method = "chainrule backward"
    if reference is None:
        reference = _reference_by_differences(forward, inputs, slots, dout)
        method = "centered differences"
    report = LayerCheck(layer, method)
    for i, mine, ref in zip(slots, grads, reference):
        report.rows.append(_row(f"d{names[i]}", np.asarray(mine, dtype=np.float64), ref, dout))
    if show:
        print(report)
    return report


def _row(name: str, mine: np.ndarray, ref: np.ndarray, dout: np.ndarray) -> GradientRow:
    if mine.shape != ref.shape:
        hint = _shape_hint(mine, ref, dout)
        return GradientRow(name, float("nan"), "wrong", hint=hint)
    errors = relative_errors(mine, ref)
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape) if errors.size else ()
    error = float(errors.max()) if errors.size else 0.0
    verdict = band(error)
    row = GradientRow(name, error, verdict, worst)
    if errors.size:
        row.mine, row.reference = float(mine[worst]), float(ref[worst])
    if verdict in ("suspicious", "wrong"):
        row.hint = _value_hint(mine, ref, dout)
    return row


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(relative_errors(a, b) < 1e-6))


def _value_hint(mine: np.ndarray, ref: np.ndarray, dout: np.ndarray) -> str:
    """A name for the mistake when the values have a recognizable relation to the reference."""
    if _close(mine, 2 * ref):
        return "yours is twice the reference: a factor of 2 too many"
    if _close(2 * mine, ref):
        return "yours is half the reference: a factor of 2 missing"
    if _close(mine, -ref):
        return "yours has the wrong sign"
    if mine.ndim == 2 and _close(mine.T, ref):
        return "yours is the transpose of the reference: a missing or extra transpose"
    return _sum_hint(mine, ref, dout)


def _sum_hint(mine: np.ndarray, ref: np.ndarray, dout: np.ndarray) -> str:
    """Whether ``mine`` is the upstream gradient summed over other axes than ``ref`` is."""
    yours = _summed_axes(mine, dout)
    right = _summed_axes(ref, dout)
    if yours is not None and right is not None and yours != right:
        return (
            f"yours sums the upstream gradient over axis {_axes(yours)}; it should sum over "
            f"axis {_axes(right)}"
        )
    return ""


def _summed_axes(grad: np.ndarray, dout: np.ndarray) -> tuple | None:
    for r in range(1, dout.ndim + 1):
        for axes in _combinations(dout.ndim, r):
            total = dout.sum(axis=axes)
            if total.size == grad.size and _close(total.reshape(grad.shape), grad):
                return axes
    return None


def _combinations(n: int, r: int) -> list:
    from itertools import combinations

    return list(combinations(range(n), r))


def _axes(axes: tuple) -> str:
    return str(axes[0]) if len(axes) == 1 else str(axes)


def _shape_hint(mine: np.ndarray, ref: np.ndarray, dout: np.ndarray) -> str:
    if mine.ndim == 2 and mine.T.shape == ref.shape:
        if _close(mine.T, ref):
            return (
                f"it has shape {mine.shape}, the input {ref.shape}: yours is the reference "
                "transposed (a missing transpose)"
            )
        return f"it has shape {mine.shape}, the input {ref.shape}: a missing transpose?"
    hint = _sum_hint(mine, ref, dout)
    return f"it has shape {mine.shape}, the input {ref.shape}" + (f": {hint}" if hint else "")
