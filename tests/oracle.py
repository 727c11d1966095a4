"""Test oracle shared by the tensor tests: the same computation built in chainrule and in PyTorch,
values, dtypes, gradients and second derivatives compared; hypothesis strategies for shapes,
broadcastable shape pairs and float32/float64 arrays with edge values (zeros, ties, large)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.engine import gradients

DTYPES = (np.float32, np.float64)
TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
TOLERANCE = {np.dtype(np.float32): (2e-4, 1e-5), np.dtype(np.float64): (1e-9, 1e-12)}

EDGES = (0.0, 0.0, 1.0, -1.0, 0.5, -2.0)  # zeros twice: they and ties matter most
LARGE = (1e4, -1e4, 12345.5, -9876.25)


# --- strategies ----------------------------------------------------------------------------------
def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes of small size (sides 1..max_side)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcastable_pairs(max_dims: int = 3) -> st.SearchStrategy:
    """Two shapes that broadcast together (either may be the smaller one)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=max_dims, min_side=1, max_side=3
    ).map(lambda b: b.input_shapes)


def elements(dtype: Any, domain: str = "real", large: bool = False) -> st.SearchStrategy:
    """Element values: ``real`` (edges and [-3, 3]), ``positive`` ([0.25, 4]), ``bounded``
    ([-3, 3], no large values), optionally with large magnitudes mixed in."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    if domain == "positive":
        return st.sampled_from((1.0, 0.5, 2.0)) | st.floats(0.25, 4.0, width=width)
    base = st.sampled_from(EDGES) | st.floats(-3.0, 3.0, width=width)
    if large and domain == "real":
        return base | st.sampled_from(LARGE)
    return base


def arrays(dtype: Any, shape: Any, domain: str = "real", large: bool = False) -> st.SearchStrategy:
    """Arrays of ``dtype`` and ``shape`` (a tuple or a strategy) with edge values."""
    return hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, domain, large))


def dtypes() -> st.SearchStrategy:
    """float32 or float64."""
    return st.sampled_from(DTYPES)


# --- first order ---------------------------------------------------------------------------------
def weights(shape: tuple, dtype: Any, seed: int = 0) -> np.ndarray:
    """A fixed upstream gradient of ``shape`` (so every output element counts differently)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(actual: np.ndarray, expected: np.ndarray, dtype: Any, what: str, scale: float) -> None:
    rtol, atol = TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(
        actual, expected, rtol=rtol * scale, atol=atol * scale, equal_nan=True, err_msg=what
    )


def _torch_float_dtype(out: torch.Tensor) -> np.dtype:
    return np.dtype(str(out.dtype).replace("torch.", ""))


def compare(
    cr_fn: Callable,
    torch_fn: Callable,
    *inputs: np.ndarray,
    wrt: Sequence[int] | None = None,
    scale: float = 1.0,
) -> Any:
    """Run ``cr_fn`` on chainrule tensors and ``torch_fn`` on torch tensors made from ``inputs``;
    assert equal values and dtypes, then backpropagate the same upstream gradient and assert equal
    gradients (each with its input's dtype). ``wrt`` picks the inputs that require grad (all
    floating ones by default). Returns the chainrule output."""
    wrt = [i for i, a in enumerate(inputs) if a.dtype.kind == "f"] if wrt is None else list(wrt)
    xs = [cr.tensor(a, requires_grad=i in wrt) for i, a in enumerate(inputs)]
    ts = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(inputs)]
    out = cr_fn(*xs)
    tout = torch_fn(*ts)
    expected = tout.detach().numpy()
    assert out.shape == tuple(tout.shape), (out.shape, tuple(tout.shape))
    assert out.dtype == _torch_float_dtype(tout), (out.dtype, tout.dtype)
    _close(out.data, expected, out.dtype, "forward value", scale)
    if not wrt:
        return out
    seed = weights(out.shape, out.dtype)
    out.backward(seed)
    tout.backward(torch.from_numpy(seed))
    for i in wrt:
        tgrad = ts[i].grad
        expected = np.zeros_like(inputs[i]) if tgrad is None else tgrad.numpy()
        assert xs[i].grad is not None, f"no gradient reached input {i}"
        assert xs[i].grad.dtype == inputs[i].dtype, (i, xs[i].grad.dtype, inputs[i].dtype)
        assert xs[i].grad.shape == inputs[i].shape
        _close(xs[i].grad, expected, inputs[i].dtype, f"gradient of input {i}", scale)
    return out


# --- second order --------------------------------------------------------------------------------
def _total(terms: list) -> Any:
    return reduce(lambda a, b: a + b, terms) if terms else None


def hvp_chainrule(
    fn: Callable, inputs: Sequence[np.ndarray], w: np.ndarray, vs: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Hessian-vector products of ``sum(fn(x) * w)`` along ``vs`` by double backward."""
    xs = [cr.tensor(a, requires_grad=True) for a in inputs]
    s = (fn(*xs) * w).sum()
    if not s.requires_grad:
        return [np.zeros_like(a) for a in inputs]
    gs = gradients(s, xs, create_graph=True)
    t = _total([(g * v).sum() for g, v in zip(gs, vs) if g.requires_grad])
    if t is None:
        return [np.zeros_like(a) for a in inputs]
    return [np.asarray(h) for h in gradients(t, xs)]


def hvp_torch(
    fn: Callable, inputs: Sequence[np.ndarray], w: np.ndarray, vs: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The same Hessian-vector products by PyTorch's double backward."""
    ts = [torch.tensor(a, requires_grad=True) for a in inputs]
    s = (fn(*ts) * torch.from_numpy(w)).sum()
    gs = torch.autograd.grad(s, ts, create_graph=True, allow_unused=True)
    t = _total(
        [
            (g * torch.from_numpy(v)).sum()
            for g, v in zip(gs, vs)
            if g is not None and g.requires_grad
        ]
    )
    if t is None:
        return [np.zeros_like(a) for a in inputs]
    hs = torch.autograd.grad(t, ts, allow_unused=True)
    return [np.zeros_like(a) if h is None else h.numpy(force=True) for a, h in zip(inputs, hs)]


def compare_second_order(
    cr_fn: Callable, torch_fn: Callable, *inputs: np.ndarray, scale: float = 1.0
) -> list[np.ndarray]:
    """Assert that chainrule's and PyTorch's Hessian-vector products agree (inputs in float64).
    Returns chainrule's products."""
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    rng = np.random.default_rng(1)
    probe = cr_fn(*[cr.tensor(a) for a in inputs])
    w = rng.standard_normal(probe.shape)
    vs = [rng.standard_normal(a.shape) for a in inputs]
    mine = hvp_chainrule(cr_fn, inputs, w, vs)
    theirs = hvp_torch(torch_fn, inputs, w, vs)
    for i, (m, t) in enumerate(zip(mine, theirs)):
        assert m.shape == inputs[i].shape
        np.testing.assert_allclose(
            m,
            t,
            rtol=1e-8 * scale,
            atol=1e-10 * scale,
            equal_nan=True,
            err_msg=f"second derivative along input {i}",
        )
    return mine


def distinct(
    rng: np.random.Generator, shape: tuple, low: float = -2.0, high: float = 2.0, gap: float = 0.05
) -> np.ndarray:
    """Random float64 values with no two closer than ``gap`` and none within ``gap`` of 0: safe
    points for gradcheck around kinks (relu, abs, max) and ties."""
    n = int(np.prod(shape))
    grid = np.arange(low, high, gap * 2)
    grid = grid[np.abs(grid) > gap]
    picked = rng.choice(grid, size=n, replace=False) + rng.uniform(-gap / 4, gap / 4, size=n)
    return picked.reshape(shape)
