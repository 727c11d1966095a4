"""``chainrule train --diagnose`` and ``--sanity``: the options that watch a run rather than
change it (see :mod:`chainrule.diagnostics`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

#: Options of this module: about the invocation, never restored by ``--resume``.
OPTIONS = ("diagnose", "sanity")
EVERY = 10  # steps between samples (about 12% of a digits MLP's training time: docs/benchmarks.md)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--diagnose`` and ``--sanity``."""
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help=f"sample activations, gradients and update/weight ratios every {EVERY} steps; "
        "write report.html and print what looks wrong",
    )
    parser.add_argument(
        "--sanity",
        action="store_true",
        help="instead of training, check the initial loss against log C and that the model "
        "can overfit 20 examples (exit 1 if not)",
    )


def sanity(trainer: Any) -> int:
    """Run the sanity checks on the trainer's model, data and optimizer; exit code 0 or 1."""
    from ..diagnostics import sanity_check

    group = trainer.optimizer.param_groups[0]
    defaults = trainer.optimizer.defaults
    config = {k: group[k] for k in defaults}
    report = sanity_check(
        trainer.model,
        trainer.x_train,
        trainer.y_train,
        optimizer=type(trainer.optimizer),
        optim_config=config,
        loss_fn=trainer.loss_fn,
    )
    print(report)
    return 0 if report.passed else 1


def attach(args: argparse.Namespace, trainer: Any) -> Any:
    """With ``--diagnose``, a :class:`~chainrule.diagnostics.Diagnostics` fed by ``trainer``."""
    if not args.diagnose:
        return None
    from ..diagnostics import Diagnostics

    diag = Diagnostics(trainer.model, trainer.optimizer, every=EVERY)
    trainer.callbacks.append(diag.callback())
    return diag


def finish(diag: Any, out: str, title: str, stream: Any = None) -> None:
    """Write ``report.html`` to ``out`` and print the findings (to ``stream``, default stdout)."""
    if diag is None:
        return
    stream = stream or sys.stdout
    path = diag.report(os.path.join(out, "report.html"), title)
    found = diag.findings()
    if found:
        print("diagnosis:", file=stream)
        for finding in found:
            print(f"  - {finding}", file=stream)
    else:
        print("diagnosis: nothing looks wrong", file=stream)
    print(f"report: {path}", file=stream)
