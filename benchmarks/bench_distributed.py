"""Data-parallel training over MPI (cr.distributed): steps per second on 1 and 2 ranks, and the
communication time per step, for a small model (communication dominates) and a large one.

Each configuration runs ``mpiexec -n R`` (the ``mpich`` wheel's, via cr.distributed) on this
script in worker mode: R ranks split one global batch, average their gradients with one
``Allreduce`` per step and take the same SGD step. Before reporting, the script checks that the
1-rank and 2-rank runs end with the same parameters (relative 1e-9). Each rank uses one BLAS
thread, so 2 ranks use 2 cores; a 1-rank run with 2 BLAS threads is shown for comparison.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_distributed.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

# (name, layer widths, global batch, steps per timed round)
MODELS = (
    ("small", (2, 100, 3), 300, 100),
    ("large", (784, 1024, 1024, 10), 256, 5),
)
ROUNDS = 7


def build(widths: tuple) -> nn.Module:
    layers: list = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Linear(a, b, seed=i), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def worker(widths: tuple, batch: int, steps: int, out: str) -> None:
    """One rank: after a warm-up step, ``ROUNDS`` rounds of ``steps`` steps; the fastest round
    (slowest rank) is reported, with the time spent in ``allreduce_gradients`` during it."""
    dist = cr.distributed
    rank, ranks = dist.get_rank(), dist.get_world_size()
    model = dist.DataParallel(build(widths))
    opt = optim.SGD(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, widths[0]))
    y = rng.integers(0, widths[-1], size=batch)
    xb, yb = x[rank::ranks], y[rank::ranks]

    def step() -> float:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        start = time.perf_counter()
        model.allreduce_gradients()
        spent = time.perf_counter() - start
        opt.step()
        return spent

    step()
    best = (float("inf"), 0.0)
    for _ in range(ROUNDS):
        dist.barrier()
        start = time.perf_counter()
        comm = sum(step() for _ in range(steps))
        elapsed = dist.all_reduce(time.perf_counter() - start, op="max")
        best = min(best, (elapsed, dist.all_reduce(comm, op="max")))
    # the Allreduce alone, every rank ready (no waiting for a slower rank): the wire cost
    flat = np.zeros(sum(p.size for p in model.parameters()) + len(list(model.parameters())))
    wire = float("inf")
    for _ in range(ROUNDS):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat)
        wire = min(wire, dist.all_reduce(time.perf_counter() - start, op="max"))
    if rank == 0:
        with open(out, "w") as f:
            state = {k: v.tolist() for k, v in model.module.state_dict().items()}
            json.dump(
                {"elapsed": best[0], "comm": best[1] / steps, "wire": wire, "state": state}, f
            )


def launch(ranks: int, threads: int, name: str) -> dict:
    """Run the ``name`` model's worker on ``ranks`` ranks of ``threads`` BLAS threads each."""
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench_distributed_{os.getpid()}.json")
    argv = [sys.executable, os.path.abspath(__file__), "--worker", name, "--out", out]
    command, env = cr.distributed.launch_command(ranks, argv)
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    subprocess.run(command, env=env, check=True, timeout=600)
    with open(out) as f:
        result = json.load(f)
    os.remove(out)
    return result


def main() -> None:
    print(f"cr.distributed over {cr.distributed.mpiexec()}; {os.cpu_count()} cores")
    rows = []
    for name, widths, batch, steps in MODELS:
        params = build(widths).state_dict()
        size = sum(v.size for v in params.values())
        one = launch(1, 1, name)
        two = launch(2, 1, name)
        threaded = launch(1, 2, name)
        for key in params:
            a, b = np.array(one["state"][key]), np.array(two["state"][key])
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12), (
                f"{name}: 1 and 2 ranks differ at {key}"
            )
        rate = {k: steps / r["elapsed"] for k, r in (("1", one), ("2", two), ("1t", threaded))}
        rows.append(
            (
                f"{name}: {'-'.join(map(str, widths))} MLP",
                f"{size:,}",
                batch,
                f"{rate['1']:.1f}",
                f"{rate['1t']:.1f}",
                f"{rate['2']:.1f}",
                f"{rate['2'] / rate['1']:.2f}x",
                f"{two['comm'] * 1e3:.2f} ms",
                f"{two['wire'] * 1e3:.2f} ms",
                f"{two['comm'] / (two['elapsed'] / steps):.0%}",
            )
        )
    header = (
        "model",
        "parameters",
        "global batch",
        "steps/s, 1 rank",
        "steps/s, 1 rank 2 threads",
        "steps/s, 2 ranks",
        "2 ranks vs 1",
        "allreduce_gradients/step",
        "Allreduce alone",
        "share of step",
    )
    print(markdown_table(header, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=[m[0] for m in MODELS])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        _, widths, batch, steps = next(m for m in MODELS if m[0] == args.worker)
        worker(widths, batch, steps, args.out)
    else:
        main()
