"""Run every benchmark in one go (``make bench``), each in its own process, printing its tables.

Each script checks that the implementations it compares agree before it times them; ratios are
only meaningful within one script's run (the machines are shared and noisy).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = (
    "bench_scalar.py",
    "bench_tensor.py",
    "bench_safety.py",
    "bench_stage.py",
    "bench_train.py",
    "bench_trainer.py",
    "bench_conv.py",
    "bench_distributed.py",
    "bench_diagnostics.py",
    "bench_explore.py",
)


def main() -> int:
    """Run the benchmark scripts in turn; return the first non-zero exit code, else 0."""
    here = Path(__file__).resolve().parent
    for script in SCRIPTS:
        print(f"\n## {script}\n", flush=True)
        code = subprocess.call([sys.executable, str(here / script)])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
