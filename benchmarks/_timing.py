"""Shared timing helpers for the benchmarks: best-of-N wall time and a markdown table printer.

Best-of-N (not the mean) is reported because the machine is shared: the fastest run is the one
least disturbed by other processes, and it is what the code itself costs.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any


def best_of(
    fn: Callable[[], Any],
    repeat: int = 5,
    setup: Callable[[], Any] | None = None,
    collect_garbage: bool = True,
) -> float:
    """The smallest wall time (seconds) of ``repeat`` calls of ``fn``, each after ``setup``.

    ``setup`` (untimed) runs before every call, for work that must not be counted (building
    inputs). Garbage is collected before each call, so a collection owed by an earlier run does
    not land in a later one. During the call the cyclic garbage collector runs as usual when
    ``collect_garbage`` (its cost is real for users); with ``collect_garbage=False`` it is paused,
    which times the code alone.
    """
    best = float("inf")
    was_enabled = gc.isenabled()
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        if not collect_garbage:
            gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            if was_enabled:
                gc.enable()
    return best


def format_seconds(seconds: float) -> str:
    """A duration in the unit that reads best (µs, ms or s), three significant digits."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are converted with ``str``."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
