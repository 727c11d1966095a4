"""Scalar-engine benchmarks: a micrograd-style MLP training step and a 200,000-deep chain.

(a) One SGD step of a 2 -> 16 -> 16 -> 1 ReLU MLP on 50 "moons" points with the SVM max-margin
    loss plus L2 (the setup of micrograd's demo): micrograd, chainrule built from primitive gates
    (the same expression as micrograd's), and chainrule with each neuron's weighted sum as one
    ``linear_combination`` gate. All three start from the same weights; their losses are checked
    to agree before anything is timed.
(b) Forward + backward through a chain of 200,000 gates: chainrule against PyTorch on 0-d float64
    tensors; micrograd's recursive topological sort fails on it with RecursionError.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
.venv/bin/python benchmarks/bench_scalar.py``. Times are best of N wall times (see _timing.py),
with Python's cyclic garbage collector running as usual ("GC on") and paused ("GC off"):
micrograd's per-node closures form reference cycles that only the collector frees, so the
difference between the columns is part of what each engine costs.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of, format_seconds, markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402

SIZES = [2, 16, 16, 1]
ALPHA = 1e-4  # L2 strength of micrograd's demo
LEARNING_RATE = 0.5


# --- data ---------------------------------------------------------------------------------------
def moons(n: int, seed: int = 1, noise: float = 0.1) -> tuple[list[list[float]], list[float]]:
    """Two interleaved half circles with Gaussian noise (the shape of sklearn's make_moons), labels
    in {-1, 1}; seeded, and free of heavy imports so the timed process stays small."""
    rng = random.Random(seed)
    X, y = [], []
    for i in range(n):
        t = math.pi * rng.random()
        if i % 2:
            x0, x1, label = 1 - math.cos(t), 0.5 - math.sin(t), 1.0
        else:
            x0, x1, label = math.cos(t), math.sin(t), -1.0
        X.append([x0 + rng.gauss(0, noise), x1 + rng.gauss(0, noise)])
        y.append(label)
    return X, y


def initial_weights(seed: int = 1337) -> list[list[tuple[list[float], float]]]:
    """Per layer, per neuron: (weights, bias), uniform in [-1, 1] like micrograd's Neuron."""
    rng = random.Random(seed)
    return [
        [([rng.uniform(-1, 1) for _ in range(nin)], 0.0) for _ in range(nout)]
        for nin, nout in zip(SIZES, SIZES[1:])
    ]


# --- the three models -----------------------------------------------------------------------------
class ScalarMLP:
    """A scalar MLP over any Value class with ``*``, ``+`` and ``relu``: micrograd's structure."""

    def __init__(self, value_cls: type, weights: list, fused: bool = False) -> None:
        self.value_cls = value_cls
        self.fused = fused
        self.layers = [
            [([value_cls(w) for w in ws], value_cls(b)) for ws, b in layer] for layer in weights
        ]
        self.params = [p for layer in self.layers for ws, b in layer for p in (*ws, b)]

    def __call__(self, x: list) -> object:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if self.fused:
                acts = [cr.linear_combination(ws, x, b) for ws, b in layer]
            else:
                acts = [sum((wi * xi for wi, xi in zip(ws, x)), b) for ws, b in layer]
            x = acts if i == last else [a.relu() for a in acts]
        return x[0]

    def loss(self, X: list, y: list) -> object:
        """SVM max-margin data loss averaged over the points, plus ALPHA * sum of squares."""
        V = self.value_cls
        scores = [self([V(a) for a in row]) for row in X]
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        if self.fused:
            reg = cr.linear_combination(self.params, self.params)
        else:
            reg = sum(p * p for p in self.params)
        return data_loss + ALPHA * reg

    def step(self, X: list, y: list) -> float:
        """One training step: forward, zero grads, backward, SGD update; returns the loss."""
        total = self.loss(X, y)
        for p in self.params:
            p.grad = 0.0
        total.backward()
        for p in self.params:
            p.data -= LEARNING_RATE * p.grad
        return total.data


# --- (a) the MLP step -----------------------------------------------------------------------------
def bench_mlp(repeat: int) -> list:
    from micrograd.engine import Value as MicroValue

    X, y = moons(50)
    weights = initial_weights()
    models = {
        "micrograd": ScalarMLP(MicroValue, weights),
        "chainrule, primitive gates": ScalarMLP(cr.Value, weights),
        "chainrule, fused neuron gate": ScalarMLP(cr.Value, weights, fused=True),
    }
    first = {}
    for _ in range(2):  # two steps from the same weights: same losses, so same updates
        losses = {name: m.step(X, y) for name, m in models.items()}
        first = first or losses
        reference = losses["micrograd"]
        for name, loss in losses.items():
            if not math.isclose(loss, reference, rel_tol=1e-9, abs_tol=1e-12):
                raise SystemExit(f"loss mismatch: {name} gives {loss!r}, micrograd {reference!r}")
    runs = {
        (name, collect): (lambda m=m: m.step(X, y))
        for name, m in models.items()
        for collect in (True, False)
    }
    times = interleaved(runs, repeat)
    rows = []
    for name in models:
        cells = [name]
        for collect in (True, False):
            t, base = times[name, collect], times["micrograd", collect]
            cells += [format_seconds(t), f"{base / t:.2f}x"]
        rows.append(cells + [f"{first[name]:.12f}"])
    return rows


# --- (b) the deep chain ---------------------------------------------------------------------------
def chain(x: object, depth: int) -> object:
    """``depth`` gates: ``(y * 1.0001).tanh()`` repeated, as in a deep recurrent unrolling."""
    y = x
    for _ in range(depth // 2):
        y = (y * 1.0001).tanh()
    return y


def run_chainrule_chain(depth: int) -> float:
    x = cr.Value(0.5)
    chain(x, depth).backward()
    return x.grad


def run_torch_chain(depth: int) -> float:
    import torch

    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    chain(x, depth).backward()
    return x.grad.item()


def micrograd_chain_fails(depth: int) -> str:
    from micrograd.engine import Value as MicroValue

    x = MicroValue(0.5)
    y = x
    for _ in range(depth // 2):
        y = y * 1.0001 + 0.0  # micrograd has no tanh; the same depth in its own gates
    try:
        y.backward()
    except RecursionError:
        return "RecursionError"
    return "ok"


def bench_chain(depth: int, repeat: int) -> list:
    grad = run_chainrule_chain(depth)
    runs = {("chainrule", c): lambda: run_chainrule_chain(depth) for c in (True, False)}
    try:
        import torch
    except ImportError:
        torch = None
    else:
        torch.set_num_threads(1)
        t_grad = run_torch_chain(depth)
        if not math.isclose(t_grad, grad, rel_tol=1e-9):
            raise SystemExit(f"chain gradient mismatch: chainrule {grad!r}, PyTorch {t_grad!r}")
        runs.update({("torch", c): lambda: run_torch_chain(depth) for c in (True, False)})
    times = interleaved(runs, repeat)
    rows = [
        [
            "chainrule",
            format_seconds(times["chainrule", True]),
            "",
            format_seconds(times["chainrule", False]),
            "",
            f"{grad:.12e}",
        ]
    ]
    if torch is None:
        rows.append(["PyTorch", "not installed", "", "", "", ""])
    else:
        cells = ["PyTorch (0-d float64 tensors)"]
        for c in (True, False):
            cells += [
                format_seconds(times["torch", c]),
                f"{times['torch', c] / times['chainrule', c]:.2f}x",
            ]
        rows.append(cells + [f"{t_grad:.12e}"])
    rows.append(["micrograd", micrograd_chain_fails(depth), "", "", "", ""])
    return rows


def interleaved(runs: dict, repeat: int) -> dict:
    """Best time of each ``(name, collect_garbage)`` run over ``repeat`` rounds, every round
    timing every run once, so that all of them see the same load on a shared machine."""
    best = {key: float("inf") for key in runs}
    for _ in range(repeat):
        for (name, collect), fn in runs.items():
            t = best_of(fn, 1, collect_garbage=collect)
            best[name, collect] = min(best[name, collect], t)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per case (best is kept)")
    parser.add_argument("--depth", type=int, default=200_000, help="gates in the deep chain")
    args = parser.parse_args(argv)

    print(
        f"Python {platform.python_version()} ({platform.machine()}), best of {args.repeat}; "
        "'GC on' is Python's default, 'GC off' pauses the cyclic collector while timing\n"
    )
    print("### Scalar MLP training step (2-16-16-1 ReLU, 50 points, SVM loss + L2, SGD)\n")
    header = ["implementation", "GC on", "speed-up", "GC off", "speed-up", "loss (1st step)"]
    print(markdown_table(header, bench_mlp(args.repeat)))
    print(f"\n### Forward + backward through a chain of {args.depth:,} gates\n")
    header = [
        "implementation",
        "GC on",
        "chainrule faster by",
        "GC off",
        "chainrule faster by",
        "dy/dx",
    ]
    print(markdown_table(header, bench_chain(args.depth, args.repeat)))


if __name__ == "__main__":
    main()
