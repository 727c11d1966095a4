"""Numerical gradients by centered differences and the gradient check of the CS231n notes:
analytic versus numeric, compared by relative error |a - n| / max(|a|, |n|)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .engine import Node
from .functional import grad
from .tensor import Tensor

__all__ = ["GradcheckError", "gradcheck", "numerical_grad", "relative_error"]


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message says where and by how much."""


def relative_error(analytic: Any, numeric: Any) -> np.ndarray:
    """|a - n| / max(|a|, |n|) elementwise, 0 where both are 0, and inf where either is NaN or
    infinite: a non-finite value cannot be checked, so it never passes a tolerance."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(n)
    a, n = np.where(finite, a, 0.0), np.where(finite, n, 0.0)
    scale = np.maximum(np.abs(a), np.abs(n))
    ratio = np.abs(a - n) / np.where(scale > 0, scale, 1.0)
    return np.where(finite, ratio, np.inf)


def _scalar_output(out: Any) -> float:
    data = out.data if isinstance(out, Node) else out
    array = np.asarray(data, dtype=np.float64)
    if array.size != 1:
        raise ValueError(
            f"numerical_grad: the function must return one number, got shape {array.shape}"
        )
    return float(array.reshape(()))


def numerical_grad(f: Callable, x: Any, eps: float = 1e-6) -> np.ndarray:
    """The gradient of scalar-valued ``f`` at ``x`` by centered differences
    (f(x + h) - f(x - h)) / 2h, one element at a time, in float64. ``f`` receives a Tensor."""
    point = np.array(x.data if isinstance(x, Node) else x, dtype=np.float64)
    out = np.zeros_like(point)
    flat, gflat = point.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = _scalar_output(f(Tensor(point)))
        flat[i] = old - eps
        minus = _scalar_output(f(Tensor(point)))
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return out


def gradcheck(
    f: Callable,
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check ``f``'s analytic gradients against centered differences at ``inputs`` (float64).

    A non-scalar output is checked through a fixed random projection ``sum(f(x) * v)``. Returns
    True, or raises :class:`GradcheckError` naming the input, the worst element's index, both
    values and their relative error. An element passes when ``|a - n| <= atol + rtol * |n|``.
    """
    points = [np.array(x.data if isinstance(x, Node) else x, dtype=np.float64) for x in inputs]
    probe = f(*[Tensor(p) for p in points])
    shape = np.shape(probe.data if isinstance(probe, Node) else probe)
    weights = np.random.default_rng(seed).standard_normal(shape)

    def projected(*args: Any) -> Any:
        out = f(*args)
        return out if shape == () or np.prod(shape) == 1 else (out * weights).sum()

    for k in range(len(points)):
        analytic = np.asarray(grad(projected, argnums=k)(*[p.copy() for p in points]))

        def along_k(xk: np.ndarray, k: int = k) -> Any:
            args = [Tensor(p) for p in points]
            args[k] = xk
            return projected(*args)

        numeric = numerical_grad(along_k, points[k], eps)
        for values, what in ((analytic, "analytic"), (numeric, "numeric")):
            if not np.isfinite(values).all():
                where = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
                raise GradcheckError(
                    f"gradcheck failed for input {k} at index {where}: the {what} gradient is "
                    f"{float(values[where])} (analytic {float(analytic[where]):.10g}, numeric "
                    f"{float(numeric[where]):.10g}); a non-finite value cannot be checked"
                )
        bad = ~(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric))
        if np.any(bad):
            errors = np.where(bad, relative_error(analytic, numeric), -1.0)
            worst = np.unravel_index(int(np.argmax(errors)), errors.shape) if errors.ndim else ()
            raise GradcheckError(
                f"gradcheck failed for input {k} at index {tuple(int(i) for i in worst)}: "
                f"analytic {float(analytic[worst]):.10g}, numeric {float(numeric[worst]):.10g}, "
                f"relative error {float(relative_error(analytic[worst], numeric[worst])):.3g} "
                f"({int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol})"
            )
    return True
