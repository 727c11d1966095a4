"""What `cr.train.Trainer` costs over the training loop written by hand with chainrule.

Both train the same 2-layer ReLU MLP from the same weights on the same shuffled batches (the
script checks that they end with identical weights), and both measure the training accuracy after
every epoch, as `chainrule train` reports it. The Trainer adds its finiteness checks, histories,
train/eval mode switches and, with a checkpoint, a snapshot of the state after every epoch (for
Ctrl-C) and an fsynced file every `checkpoint_every` epochs; with `jit=True` (as `chainrule train`
runs it) each step's forward and backward run as staged code, tracing included (each batch shape
is traced on its first two steps). Two shapes of run: the spiral at full
batch (one step per epoch: the per-epoch costs show most) and digits in batches of 32. A second
table times one `Trainer.train_step` of each model `chainrule train` trains, eager and staged
(steady state), and the first two (traced) calls of a fresh jitted trainer. Run pinned to one
thread:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_trainer.py
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import best_of, format_seconds, markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402
from chainrule.train import Trainer  # noqa: E402

REG = 1e-3
ROUNDS = 15
STEPS = 20  # steps timed together in the steady state


def _model(features: int, classes: int) -> nn.Module:
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Linear(features, 100, generator=rng), nn.ReLU(), nn.Linear(100, classes, generator=rng)
    )


def by_hand(x, y, classes, lr, batch, epochs):
    """The loop a user writes: forward, L2 penalty, backward, step; accuracy after each epoch."""
    model = _model(x.shape[1], classes)
    opt = optim.SGD(model.parameters(), lr=lr)
    weights = [model[0].weight, model[2].weight]
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        for xb, yb in cr.data.batches(x, y, batch or len(x), generator=rng):
            loss = F.cross_entropy(model(xb), yb) + F.l2_penalty(weights, REG)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with cr.no_grad():
            np.mean(model(x).data.argmax(axis=1) == y)
    return model.state_dict()


def with_trainer(x, y, classes, lr, batch, epochs, checkpoint=None, every=1, jit=False):
    """The same run through the Trainer (optionally checkpointing, or staging its steps)."""
    trainer = Trainer(
        _model(x.shape[1], classes),
        (x, y),
        optim_config={"lr": lr},
        reg=REG,
        batch_size=batch,
        epochs=epochs,
        generator=0,
        checkpoint=checkpoint,
        checkpoint_every=every,
        jit=jit,
    )
    return trainer.fit().model.state_dict()


def _step_trainer(kind: str, jit: bool) -> tuple[Trainer, np.ndarray, np.ndarray]:
    """A trainer of one of the CLI's models and the batch its steps are timed on."""
    rng = np.random.default_rng(0)
    if kind.startswith("spiral"):
        x, y = cr.data.spiral(100, 3, seed=0)
        model = nn.FullyConnectedNet(2, [100], 3, generator=rng)
    elif kind.startswith("convnet"):
        split = cr.data.digits(seed=0, images=True)
        x, y = split.x_train[:32], split.y_train[:32]
        model = nn.ThreeLayerConvNet((1, 8, 8), 32, 3, 100, 10, generator=rng)
    else:
        split = cr.data.digits(seed=0)
        x, y = split.x_train[:32], split.y_train[:32]
        norm, dropout = ("batchnorm", 0.5) if "batch norm" in kind else (None, 0.0)
        model = nn.FullyConnectedNet(64, [100], 10, norm, dropout, generator=rng)
    config = {"lr": 0.01, "momentum": 0.9}
    return Trainer(model, (x, y), optim_config=config, reg=REG, jit=jit), x, y


def _steps(trainer: Trainer, x: np.ndarray, y: np.ndarray, count: int = 0) -> None:
    for _ in range(count or STEPS):
        trainer.train_step(x, y)


def steps() -> None:
    """Steady-state steps, eager and staged, and the cost of the first (traced) calls."""
    kinds = [
        "spiral MLP, batch 300",
        "digits MLP, batch 32",
        "digits MLP + batch norm + dropout, batch 32",
        "convnet conv3x3x32, batch 32",
    ]
    rows = []
    for kind in kinds:
        runs = {jit: _step_trainer(kind, jit) for jit in (False, True)}
        for trainer, x, y in runs.values():
            for _ in range(3):  # the jitted one: traced twice, then staged
                trainer.train_step(x, y)
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(ROUNDS):
            for jit, run in runs.items():
                best[jit] = min(best[jit], best_of(lambda run=run: _steps(*run), 1) / STEPS)
        assert runs[True][0].jitted.staged_calls > 0
        first = [float("inf")] * 2
        for _ in range(3):
            run = _step_trainer(kind, True)
            for i in range(2):
                first[i] = min(first[i], best_of(lambda run=run: _steps(*run, 1), 1))
        rows.append(
            [
                kind,
                format_seconds(best[False]),
                f"{format_seconds(best[True])} ({best[True] / best[False]:.2f}x)",
                f"{format_seconds(first[0])}, {format_seconds(first[1])}",
            ]
        )
    header = ["one step of", "eager", "staged (jit)", "first two calls (traced)"]
    print(markdown_table(header, rows))


def main() -> None:
    spiral = cr.data.spiral(100, 3, seed=0)
    digits = cr.data.digits(seed=0)
    runs = [
        ("spiral, full batch, 200 epochs", spiral[0], spiral[1], 3, 1.0, 0, 200, 100),
        ("digits, batch 32, 5 epochs", digits.x_train, digits.y_train, 10, 0.1, 32, 5, 5),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "checkpoint.npz")
        for title, x, y, classes, lr, batch, epochs, every in runs:
            args = (x, y, classes, lr, batch, epochs)
            mine, theirs = by_hand(*args), with_trainer(*args)
            staged = with_trainer(*args, jit=True)
            assert all(np.array_equal(mine[k], theirs[k]) for k in mine), "runs differ"
            assert all(np.allclose(mine[k], staged[k], rtol=1e-12, atol=0) for k in mine), "jit"
            variants = [
                lambda args=args: by_hand(*args),
                lambda args=args: with_trainer(*args),
                lambda args=args: with_trainer(*args, jit=True),
                lambda args=args, e=every: with_trainer(*args, path, e),
            ]
            # Interleaved rounds: a burst of load on the shared machine hits all alike.
            best = [float("inf")] * len(variants)
            for _ in range(ROUNDS):
                for i, run in enumerate(variants):
                    best[i] = min(best[i], best_of(run, repeat=1))
            floor, plain, jitted, saved = best
            rows.append(
                [
                    title,
                    format_seconds(floor / epochs),
                    f"{plain / floor:.2f}x",
                    f"{jitted / floor:.2f}x",
                    f"{saved / floor:.2f}x (every {every})",
                ]
            )
    print(
        markdown_table(
            ["run", "by hand, per epoch", "Trainer", "Trainer, jit", "Trainer + checkpoint"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
    print()
    steps()
