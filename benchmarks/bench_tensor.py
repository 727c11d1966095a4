"""Tensor-path benchmarks against the hand-written NumPy floor (and PyTorch eager when installed).

(a) The notes' two-layer network trained with hand-written NumPy backprop: N, D_in, H, D_out =
    64, 1000, 100, 10, a sigmoid hidden layer, squared error summed, learning rate 1e-4, float64,
    the same seed for all. Three ways: the NumPy floor, chainrule, PyTorch eager. Their losses
    after the same number of steps are checked to agree before anything is timed.
(b) Forward + backward through a chain of 60 elementwise gates (tanh, *1.5, sigmoid, +0.5, log,
    exp, ten times over) on a 16x16 float64 array: chainrule against the same chain written out by
    hand in NumPy (forward caching what backward needs, backward applying each local rule), and
    PyTorch eager. Gradients are checked to agree first. The ratio to the floor is per gate too,
    as every way runs the same 60 gates.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
.venv/bin/python benchmarks/bench_tensor.py``. Times are best of N wall times (see _timing.py).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of, format_seconds, markdown_table  # noqa: E402
from _twolayer import (  # noqa: E402
    D_IN,
    D_OUT,
    LEARNING_RATE,
    SEED,
    H,
    N,
    chainrule_eager,
    numpy_floor,
    two_layer_data,
)

import chainrule as cr  # noqa: E402

try:
    import torch
except ImportError:  # PyTorch is optional: the floor and chainrule still run
    torch = None

CHAIN_SHAPE = (16, 16)
CHAIN_CYCLES = 10  # six gates per cycle: 60 gates


# --- (a) the two-layer network -------------------------------------------------------------------
def train_torch(steps: int, x, y, w1, w2) -> float:
    """The same loop in PyTorch eager mode."""
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    w1 = torch.tensor(w1, requires_grad=True)
    w2 = torch.tensor(w2, requires_grad=True)
    loss = None
    for _ in range(steps):
        h = torch.sigmoid(x @ w1)
        y_pred = h @ w2
        loss = ((y_pred - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w1 -= LEARNING_RATE * w1.grad
            w2 -= LEARNING_RATE * w2.grad
        w1.grad = w2.grad = None
    return loss.item()


# --- (b) a chain of elementwise gates ------------------------------------------------------------
def chain_chainrule(x: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """60 gates forward, then backward from ``seed``; returns the input's gradient."""
    t = cr.tensor(x, requires_grad=True)
    y = t
    for _ in range(CHAIN_CYCLES):
        y = (((y.tanh() * 1.5).sigmoid() + 0.5).log()).exp()
    y.backward(seed)
    return t.grad


def chain_numpy(x: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The floor: the same 60 gates by hand, caching what each local rule needs."""
    cache = []
    y = x
    for _ in range(CHAIN_CYCLES):
        t = np.tanh(y)
        s = 1 / (1 + np.exp(-(t * 1.5)))
        p = s + 0.5
        e = np.exp(np.log(p))
        cache.append((t, s, p, e))
        y = e
    g = seed
    for t, s, p, e in reversed(cache):
        g = g * e  # exp
        g = g / p  # log
        # +0.5 passes g through
        g = g * (s * (1 - s))  # sigmoid
        g = g * 1.5  # scale
        g = g * (1 - t * t)  # tanh
    return g


def chain_torch(x: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The same chain in PyTorch eager mode."""
    t = torch.tensor(x, requires_grad=True)
    y = t
    for _ in range(CHAIN_CYCLES):
        y = torch.exp(torch.log(torch.sigmoid(torch.tanh(y) * 1.5) + 0.5))
    y.backward(torch.from_numpy(seed))
    return t.grad.numpy()


# --- the run -------------------------------------------------------------------------------------
def _copies(arrays: tuple) -> list:
    """Fresh copies, so that every run starts from the same weights (the loops update in place)."""
    return [a.copy() for a in arrays]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps per timed run (a)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs; the best is kept")
    parser.add_argument(
        "--chain-calls",
        type=int,
        default=200,
        help="forward+backward passes of the chain per timed run (b)",
    )
    args = parser.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(1)

    data = two_layer_data()
    losses = {
        "NumPy (hand-written backprop)": numpy_floor(args.steps, *_copies(data)),
        "chainrule": chainrule_eager(args.steps, *_copies(data)),
    }
    if torch is not None:
        losses["PyTorch eager"] = train_torch(args.steps, *data)
    floor_loss = losses["NumPy (hand-written backprop)"]
    for name, loss in losses.items():
        if not np.isclose(loss, floor_loss, rtol=1e-9):
            print(f"{name} reached loss {loss!r}, the floor {floor_loss!r}", file=sys.stderr)
            return 1

    runners = {"NumPy (hand-written backprop)": numpy_floor, "chainrule": chainrule_eager}
    if torch is not None:
        runners["PyTorch eager"] = train_torch
    times = {
        name: best_of(lambda fn=fn: fn(args.steps, *_copies(data)), repeat=args.repeat)
        for name, fn in runners.items()
    }
    floor = times["NumPy (hand-written backprop)"]
    rows = [
        [name, format_seconds(t / args.steps), f"{t / floor:.3f}x", f"{losses[name]:.6f}"]
        for name, t in times.items()
    ]
    print(
        f"## (a) Two-layer network, {args.steps} SGD steps (N, D_in, H, D_out = "
        f"{N}, {D_IN}, {H}, {D_OUT}; sigmoid; float64)\n"
    )
    print(
        markdown_table(
            ["implementation", "time per step", "vs NumPy floor", f"loss after {args.steps} steps"],
            rows,
        )
    )

    gen = np.random.default_rng(SEED)
    x, seed = gen.standard_normal(CHAIN_SHAPE), gen.standard_normal(CHAIN_SHAPE)
    chains = {"NumPy (hand-written forward+backward)": chain_numpy, "chainrule": chain_chainrule}
    if torch is not None:
        chains["PyTorch eager"] = chain_torch
    expected = chain_numpy(x, seed)
    for name, fn in chains.items():
        if not np.allclose(fn(x, seed), expected, rtol=1e-10, atol=1e-12):
            print(f"{name}: chain gradient differs from the floor", file=sys.stderr)
            return 1

    def many(fn):
        for _ in range(args.chain_calls):
            fn(x, seed)

    gates = 6 * CHAIN_CYCLES
    chain_times = {
        name: best_of(lambda fn=fn: many(fn), repeat=args.repeat) / args.chain_calls
        for name, fn in chains.items()
    }
    chain_floor = chain_times["NumPy (hand-written forward+backward)"]
    rows = [
        [name, format_seconds(t), format_seconds(t / gates), f"{t / chain_floor:.2f}x"]
        for name, t in chain_times.items()
    ]
    print(
        f"\n## (b) Chain of {gates} elementwise gates on {CHAIN_SHAPE[0]}x{CHAIN_SHAPE[1]} "
        "float64, forward + backward\n"
    )
    print(
        markdown_table(["implementation", "forward+backward", "per gate", "vs NumPy floor"], rows)
    )
    torch_version = f", torch {torch.__version__}" if torch is not None else ""
    print(
        f"\nPython {platform.python_version()}, NumPy {np.__version__}{torch_version}; "
        f"best of {args.repeat} runs, one thread."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
