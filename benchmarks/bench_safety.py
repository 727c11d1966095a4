"""What per-thread grad mode and the in-place (version) check cost the eager engine.

The package is copied twice into a temporary folder: as it is, and with both features turned off
(grad mode a process-wide class attribute instead of a ``threading.local``; ``saved_tensors``
without the edit-stamp comparison). The two copies are timed in one process, interleaved round by
round, on the notes' two-layer loop (64x1000 -> 100 -> 10, sigmoid, 10 SGD steps) and on the
60-gate 16x16 chain of bench_tensor.py (forward + backward, per gate); best of the rounds.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
.venv/bin/python benchmarks/bench_safety.py``.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "chainrule"
SWITCHES_OFF = (
    ("class _GradModeLocal(threading.local):", "class _GradModeLocal:"),
    (
        "        if _latest_edit < self._stamp:  # some data was edited after this gate was "
        "recorded\n"
        "            _check_versions(self, saved)\n",
        "",
    ),
)


def _copies(folder: Path) -> dict:
    """The package as it is ('with') and with both features off ('without'), imported."""
    shutil.copytree(PACKAGE, folder / "cr_with")
    shutil.copytree(PACKAGE, folder / "cr_without")
    engine = folder / "cr_without" / "engine.py"
    text = engine.read_text()
    for old, new in SWITCHES_OFF:
        if old not in text:
            raise SystemExit(f"bench_safety: engine.py no longer contains {old!r}")
        text = text.replace(old, new)
    engine.write_text(text)
    sys.path.insert(0, str(folder))
    return {k: importlib.import_module(f"cr_{k}") for k in ("without", "with")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds (best kept)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x16, seed = rng.standard_normal((16, 16)), np.ones((16, 16))
    xs, ys = rng.standard_normal((64, 1000)), rng.standard_normal((64, 10))
    w1, w2 = rng.standard_normal((1000, 100)), rng.standard_normal((100, 10))

    def chain(cr) -> None:
        t = cr.tensor(x16, requires_grad=True)
        y = t
        for _ in range(10):
            y = (((y.tanh() * 1.5).sigmoid() + 0.5).log()).exp()
        y.backward(seed)

    def two_layer(cr) -> None:
        t1, t2 = cr.tensor(w1, requires_grad=True), cr.tensor(w2, requires_grad=True)
        for _ in range(10):
            loss = (((xs @ t1).sigmoid() @ t2 - ys) ** 2).sum()
            loss.backward()
            t1.data -= 1e-4 * t1.grad
            t2.data -= 1e-4 * t2.grad
            t1.grad = t2.grad = None

    with tempfile.TemporaryDirectory() as tmp:
        mods = _copies(Path(tmp))
        best = {}
        for _ in range(args.rounds):
            for name, cr in mods.items():
                for work, fn, calls, per in (("chain", chain, 5, 60), ("two", two_layer, 1, 10)):
                    start = time.perf_counter()
                    for _ in range(calls):
                        fn(cr)
                    t = (time.perf_counter() - start) / calls / per
                    best[name, work] = min(best.get((name, work), t), t)
    print("| workload | both off | per-thread grad mode + version check | ratio |")
    print("| --- | --- | --- | --- |")
    for work, label, unit in (
        ("two", "two-layer loop, per SGD step", 1e3),
        ("chain", "60-gate 16x16 chain, per gate", 1e6),
    ):
        off, on = best["without", work], best["with", work]
        suffix = "ms" if unit == 1e3 else "µs"
        print(
            f"| {label} | {off * unit:.3f} {suffix} | {on * unit:.3f} {suffix} | {on / off:.3f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
