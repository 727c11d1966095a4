"""What diagnostics cost: one epoch of digits training (64-100-10 ReLU MLP, batch 32, plain SGD)

- with ``Module.__call__`` as it was before hooks (``return self.forward(...)``): the floor;
- as shipped, no hook registered (the hook checks in ``Module.__call__``): "unused";
- with :class:`chainrule.diagnostics.Diagnostics` sampling every 10 steps, and every step.

Each variant trains from the same weights on the same batches, and the script checks that all
of them end a first epoch with the same weights (diagnostics only read) before timing. Then the
variants take turns (A/B/C/D, A/B/C/D, ...) of one epoch of 40 batches, so that machine noise
hits them alike; the first 10 steps of a turn are not timed (they pay for the previous
variant's caches). Each step is timed in process CPU time (``time.process_time_ns``, which other
processes do not inflate), and a variant's cost is the median step time at each position of the
10-step sampling cycle, averaged: a sampled step and the steps just after it (colder caches)
count at their typical cost, interference from other processes does not. Run pinned to one thread:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_diagnostics.py
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import format_seconds, markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.diagnostics import Diagnostics  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

HIDDEN = 100
LR = 0.1
SHIPPED_CALL = nn.Module.__call__
TURN = 1  # epochs a variant trains before the next one takes over


def plain_call(self, *args, **kwargs):
    """``Module.__call__`` without the hook checks, as before hooks existed."""
    return self.forward(*args, **kwargs)


def make_batches() -> list:
    split = cr.data.digits(seed=0)
    return list(cr.data.batches(split.x_train, split.y_train, 32, seed=0))


def initial_state() -> dict:
    model = nn.Sequential(nn.Linear(64, HIDDEN, seed=1), nn.ReLU(), nn.Linear(HIDDEN, 10, seed=2))
    return model.state_dict()


class Run:
    """One variant's model, optimizer and (optional) diagnostics, trained batch by batch."""

    def __init__(self, state: dict, every: int | None, call=SHIPPED_CALL) -> None:
        self.model = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
        self.model.load_state_dict(state)
        self.opt = optim.SGD(self.model.parameters(), lr=LR)
        self.diag = Diagnostics(self.model, self.opt, every=every) if every else None
        self.call = call
        self.times: list[int] = []  # process CPU ns per step, in order

    def epoch(self, batches: list, timed: bool = True, warmup: int = 0) -> None:
        """Train on ``batches``, timing each step but the first ``warmup`` (caches still hold
        the previous variant's data then)."""
        model, opt, diag, times = self.model, self.opt, self.diag, self.times
        clock = time.process_time_ns
        nn.Module.__call__ = self.call
        try:
            for i, (xb, yb) in enumerate(batches):
                start = clock()
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if diag is not None:
                    diag.step(loss)
                if timed and i >= warmup:
                    times.append(clock() - start)
        finally:
            nn.Module.__call__ = SHIPPED_CALL

    def cycle_cost(self, period: int) -> float:
        """Typical CPU time of ``period`` consecutive steps: the median time at each position of
        the sampling cycle, summed (medians, because other processes' interference is noise)."""
        times = np.array(self.times, dtype=np.float64)
        return float(sum(np.median(times[k::period]) for k in range(period)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=80, help="epochs per variant (default 80)")
    args = parser.parse_args()
    state, batches = initial_state(), make_batches()[:40]  # a multiple of the 10-step cycle
    variants = {
        "no hook checks (floor)": dict(every=None, call=plain_call),
        "shipped, diagnostics unused": dict(every=None),
        "diagnostics every 10 steps": dict(every=10),
        "diagnostics every step": dict(every=1),
    }
    runs = {name: Run(state, **options) for name, options in variants.items()}
    for run in runs.values():  # one untimed epoch each; diagnostics only read, so all agree
        run.epoch(batches, timed=False)
    reference = runs["no hook checks (floor)"].model.state_dict()
    for name, run in runs.items():
        for key, value in run.model.state_dict().items():
            if not np.array_equal(value, reference[key]):
                print(f"{name}: weights differ from plain training in {key}", file=sys.stderr)
                return 1
    for _ in range(args.epochs // TURN):  # interleaved, so machine noise hits all alike
        for run in runs.values():
            gc.collect()
            run.epoch(batches * TURN, warmup=10)
    period = 10
    floor = runs["no hook checks (floor)"].cycle_cost(period)
    rows = []
    for name, run in runs.items():
        cost = run.cycle_cost(period)
        rows.append(
            (
                name,
                format_seconds(cost / period / 1e9),
                f"{cost / floor:.3f}x",
                f"{(cost / floor - 1) * 100:+.1f}%",
            )
        )
    steps = len(runs["no hook checks (floor)"].times)
    print(
        f"Digits training (64-100-10 ReLU MLP, batch 32, SGD), {steps} timed steps per variant, "
        "CPU time per step (median at each position of a 10-step cycle, averaged):\n"
    )
    print(markdown_table(["variant", "per step", "vs floor", "overhead"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
