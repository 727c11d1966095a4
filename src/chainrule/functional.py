"""Function transformations (as in JAX and HIPS autograd): grad, value_and_grad, vjp, jacobian,
hessian. They take functions of arrays or Tensors and sweep the recorded circuit with chosen seeds;
nested inside one another they record their own backward (``create_graph``), so derivatives of
derivatives are exact."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import GateError, Node, gradients, is_grad_enabled, topological_order
from .tensor import Tensor

__all__ = ["grad", "hessian", "jacobian", "value_and_grad", "vjp"]


def _argnums(argnums: int | Sequence[int], nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -nargs <= n < nargs:
            raise GateError(f"argnums {n} is out of range for a function of {nargs} argument(s)")
    return tuple(n % nargs for n in nums)


def _prepare(args: tuple, nums: tuple) -> tuple[list, list, bool]:
    """Arguments with the differentiated ones as tensors requiring grad.

    An argument that is already a node requiring grad is used as it is (we are nested in an outer
    transformation, so the backward must be recorded); anything else becomes a fresh leaf.
    """
    args = list(args)
    nested = False
    wrt = []
    for n in nums:
        a = args[n]
        if isinstance(a, Node) and a.requires_grad and is_grad_enabled():
            nested = True
        else:
            data = np.asarray(a.data if isinstance(a, Node) else a)
            if data.dtype.kind != "f":
                data = data.astype(np.float64)
            a = Tensor(data, requires_grad=True)
        args[n] = a
        wrt.append(a)
    return args, wrt, nested


class _Active(threading.local):
    """Per thread, the fresh leaves of every transformation whose function is running (outermost
    first): what an inner transformation's output may depend on through a closure or another
    argument."""

    def __init__(self) -> None:
        self.leaves: list[set[int]] = []


_active = _Active()


def _call(f: Callable, wrt: list, *args: Any, **kwargs: Any) -> Any:
    """``f(*args, **kwargs)`` with ``wrt`` registered as the running transformation's leaves."""
    _active.leaves.append({id(w) for w in wrt})
    try:
        return f(*args, **kwargs)
    finally:
        _active.leaves.pop()


def _records(out: Node, nested: bool) -> bool:
    """Whether the backward of ``out`` must be recorded (``create_graph``): a differentiated
    argument was itself traced, or grad mode is on and ``out`` depends on a leaf of an enclosing
    transformation (reached through a closure or another argument). Otherwise that dependence
    would silently become a constant and the outer derivative would lose it."""
    if nested:
        return True
    if not _active.leaves or not is_grad_enabled() or not out.requires_grad:
        return False
    outer = set().union(*_active.leaves)
    return any(node._gate is None and id(node) in outer for node in topological_order(out))


def _check_output(out: Any, what: str) -> Tensor:
    """The function's result as a Tensor: an array or number it returns is a constant."""
    if isinstance(out, (np.ndarray, np.generic, int, float)):
        array = np.asarray(out)
        if array.dtype.kind in "fiu":
            return Tensor._constant(array)
    if not isinstance(out, Tensor):
        raise GateError(
            f"{what}: the function must return a Tensor computed from its inputs, got "
            f"{type(out).__name__}"
        )
    return out


def _result(grads: tuple, nested: bool, single: bool) -> Any:
    grads = (
        grads if nested else tuple(np.asarray(g.data if isinstance(g, Node) else g) for g in grads)
    )
    return grads[0] if single else grads


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``f``'s value together with its gradient with respect to argument(s) ``argnums``.

    ``f`` must return a single-element tensor. Gradients are arrays, or tensors carrying their own
    circuit when called inside another transformation.
    """

    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple:
        nums = _argnums(argnums, len(args))
        call_args, wrt, nested = _prepare(args, nums)
        out = _check_output(_call(f, wrt, *call_args, **kwargs), "grad")
        nested = _records(out, nested)
        if out.size != 1:
            raise GateError(f"grad: the function must return one number, got shape {out.shape}")
        if not out.requires_grad:
            grads = tuple(np.zeros_like(w.data) for w in wrt)
        else:
            grads = gradients(out, wrt, create_graph=nested)
        value = out if nested else np.asarray(out.data)
        return value, _result(grads, nested, isinstance(argnums, int))

    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The gradient of scalar-valued ``f`` with respect to argument(s) ``argnums``."""
    vg = value_and_grad(f, argnums)

    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return grad_f


def vjp(f: Callable, *primals: Any) -> tuple[Any, Callable]:
    """``(f(*primals), vjp_fn)``: ``vjp_fn(cotangent)`` gives the cotangent pulled back to every
    primal (a tuple, one per primal), i.e. the vector-Jacobian product."""
    call_args, wrt, nested = _prepare(primals, tuple(range(len(primals))))
    out = _check_output(_call(f, wrt, *call_args), "vjp")
    nested = _records(out, nested)

    def vjp_fn(cotangent: Any) -> tuple:
        seed = cotangent if isinstance(cotangent, Node) else np.asarray(cotangent)
        if np.shape(seed.data if isinstance(seed, Node) else seed) != out.shape:
            raise GateError(
                f"vjp: cotangent has shape {np.shape(seed)} but the output has shape {out.shape}"
            )
        if not out.requires_grad:
            return tuple(np.zeros_like(w.data) for w in wrt)
        grads = gradients(out, wrt, seed, retain_graph=True, create_graph=nested)
        return _result(grads, nested, False)

    return (out if nested else np.asarray(out.data)), vjp_fn


def jacobian(f: Callable, argnums: int = 0) -> Callable:
    """The Jacobian of ``f`` with respect to argument ``argnums``, of shape ``out + in``.

    Built one row at a time by vector-Jacobian products (one backward sweep per output element).
    """

    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        (n,) = _argnums(argnums, len(args))
        call_args, (x,), nested = _prepare(args, (n,))
        out = _check_output(_call(f, [x], *call_args, **kwargs), "jacobian")
        nested = _records(out, nested)
        rows = []
        for i in range(out.size):
            seed = np.zeros(out.size, dtype=out.dtype)
            seed[i] = 1
            if out.requires_grad:
                (g,) = gradients(
                    out, [x], seed.reshape(out.shape), retain_graph=True, create_graph=nested
                )
            else:
                g = np.zeros_like(x.data)
            rows.append(g)
        if nested:
            from .ops import reshape, stack

            return reshape(stack(rows), out.shape + x.shape)
        jac = np.stack([np.asarray(r.data if isinstance(r, Node) else r) for r in rows])
        return jac.reshape(out.shape + x.shape)

    return jacobian_f


def hessian(f: Callable, argnums: int = 0) -> Callable:
    """The Hessian of scalar-valued ``f``: the Jacobian of its gradient (exact, by recording the
    gradient's own circuit)."""
    return jacobian(grad(f, argnums), argnums)
