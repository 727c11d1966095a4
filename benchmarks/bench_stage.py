"""cr.stage against the hand-written NumPy floor, with the eager engine beside them.

(a) The notes' two-layer network trained with hand-written NumPy backprop: N, D_in, H, D_out =
    64, 1000, 100, 10, a sigmoid hidden layer, squared error summed, learning rate 1e-4, float64,
    one seed. Three loops with the same update ``w -= lr * dw``: the NumPy floor (the notes' loop),
    ``cr.stage`` of the loss with respect to (w1, w2), and the eager engine (``loss.backward()``).
    Their losses after the same steps are checked to agree before anything is timed.
(b) A chain of 60 elementwise gates (tanh, *1.5, sigmoid, +0.5, log, exp, ten times over) on a
    16x16 float64 array, summed, forward and backward: the floor writes the same 60 gates (and the
    sum) out by hand, caching what backward needs; ``cr.stage`` and the eager engine run the
    traced chain. Gradients are checked to agree first.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
.venv/bin/python benchmarks/bench_stage.py``. Each way is timed in turn, round after round, and
its best round is kept (see _timing.py for why the best); ratios are to the NumPy floor.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import format_seconds, markdown_table  # noqa: E402
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
    two_layer_loss,
)

import chainrule as cr  # noqa: E402

CHAIN_SHAPE = (16, 16)
CHAIN_CYCLES = 10  # six gates per cycle: 60 gates


def interleaved_best(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best wall time of each run over ``rounds`` rounds, the runs taking turns in each round,
    so that a disturbance of the shared machine does not favour one of them."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


# --- (a) the two-layer network -------------------------------------------------------------------
def train_staged(staged: cr.Staged, steps: int, x, y, w1, w2) -> float:
    """The same loop with the gradients from a function staged once, outside the loop."""
    loss = 0.0
    for _ in range(steps):
        loss, (grad_w1, grad_w2) = staged(x, y, w1, w2)
        w1 -= LEARNING_RATE * grad_w1
        w2 -= LEARNING_RATE * grad_w2
    return float(loss)


# --- (b) a chain of elementwise gates ------------------------------------------------------------
def chain(x):
    """60 elementwise gates, summed to one number."""
    y = x
    for _ in range(CHAIN_CYCLES):
        y = cr.exp(cr.log(cr.sigmoid(cr.tanh(y) * 1.5) + 0.5))
    return y.sum()


def chain_numpy(x: np.ndarray) -> tuple[float, np.ndarray]:
    """The floor: the same 60 gates and the sum by hand, caching what each local rule needs."""
    cache = []
    y = x
    for _ in range(CHAIN_CYCLES):
        t = np.tanh(y)
        s = 1 / (1 + np.exp(-(t * 1.5)))
        p = s + 0.5
        e = np.exp(np.log(p))
        cache.append((t, s, p, e))
        y = e
    value = y.sum()
    g = np.ones_like(x)
    for t, s, p, e in reversed(cache):
        g = g * e  # exp
        g = g / p  # log
        g = g * ((1 - s) * s)  # sigmoid (+0.5 passes g through)
        g = g * 1.5  # scale
        g = g * (1 - t * t)  # tanh
    return value, g


def chain_eager(x: np.ndarray) -> tuple[float, np.ndarray]:
    """The chain through the eager engine."""
    return cr.value_and_grad(chain)(x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed run (a)")
    parser.add_argument(
        "--chain-calls",
        type=int,
        default=200,
        help="forward+backward passes of the chain per timed run (b)",
    )
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds; the best is kept")
    args = parser.parse_args()

    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, "
        f"{platform.machine()}, float64\n"
    )

    # (a)
    data = two_layer_data()
    staged = cr.stage(two_layer_loss, *data, wrt=(2, 3))
    losses = {
        "NumPy (hand-written backprop)": numpy_floor(args.steps, *(a.copy() for a in data)),
        "cr.stage": train_staged(staged, args.steps, *(a.copy() for a in data)),
        "chainrule eager": chainrule_eager(args.steps, *(a.copy() for a in data)),
    }
    reference = losses["NumPy (hand-written backprop)"]
    for name, loss in losses.items():
        if not np.isclose(loss, reference, rtol=1e-9):
            print(f"{name}: loss {loss} differs from the floor's {reference}", file=sys.stderr)
            return 1
    copies = [[a.copy() for a in data] for _ in range(3)]
    loops = {
        "NumPy (hand-written backprop)": lambda: numpy_floor(args.steps, *copies[0]),
        "cr.stage": lambda: train_staged(staged, args.steps, *copies[1]),
        "chainrule eager": lambda: chainrule_eager(args.steps, *copies[2]),
    }
    times = interleaved_best(loops, args.rounds)
    floor = times["NumPy (hand-written backprop)"]
    print(
        f"(a) two-layer net, {N}x{D_IN} -> {H} (sigmoid) -> {D_OUT}, {args.steps} steps per "
        f"run, best of {args.rounds} rounds; loss after {args.steps} steps {reference:.6g}\n"
    )
    rows = [
        [name, format_seconds(t / args.steps), f"{t / floor:.2f}x"] for name, t in times.items()
    ]
    print(markdown_table(["way", "time per step", "vs NumPy"], rows))

    # (b)
    x = np.random.default_rng(SEED).standard_normal(CHAIN_SHAPE)
    staged_chain = cr.stage(chain, x)
    expected = chain_numpy(x)
    for name, fn in {"cr.stage": staged_chain, "chainrule eager": chain_eager}.items():
        value, grad = fn(x)
        if not (
            np.isclose(value, expected[0], rtol=1e-12)
            and np.allclose(grad, expected[1], rtol=1e-12, atol=1e-15)
        ):
            print(f"{name}: chain result differs from the floor", file=sys.stderr)
            return 1
    calls = args.chain_calls

    def many(fn: Callable) -> Callable[[], None]:
        def run() -> None:
            for _ in range(calls):
                fn(x)

        return run

    chains = {
        "NumPy (hand-written forward+backward)": many(chain_numpy),
        "cr.stage": many(staged_chain),
        "chainrule eager": many(chain_eager),
    }
    times = interleaved_best(chains, args.rounds)
    floor = times["NumPy (hand-written forward+backward)"]
    gates = 6 * CHAIN_CYCLES
    print(
        f"\n(b) {gates} elementwise gates + sum on {CHAIN_SHAPE[0]}x{CHAIN_SHAPE[1]} float64, "
        f"forward+backward, {calls} calls per run, best of {args.rounds} rounds\n"
    )
    rows = [
        [name, format_seconds(t / calls), format_seconds(t / calls / gates), f"{t / floor:.2f}x"]
        for name, t in times.items()
    ]
    print(markdown_table(["way", "time per call", "per gate", "vs NumPy"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
