"""What `cr.train.Trainer` costs over the training loop written by hand with chainrule.

Both train the same 2-layer ReLU MLP from the same weights on the same shuffled batches (the
script checks that they end with identical weights), and both measure the training accuracy after
every epoch, as `chainrule train` reports it. The Trainer adds its finiteness checks, histories,
train/eval mode switches and, with a checkpoint, a snapshot of the state after every epoch (for
Ctrl-C) and an fsynced file every `checkpoint_every` epochs. Two shapes of run: the spiral at full
batch (one step per epoch: the per-epoch costs show most) and digits in batches of 32. Run pinned
to one thread:

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


def with_trainer(x, y, classes, lr, batch, epochs, checkpoint=None, every=1):
    """The same run through the Trainer (optionally checkpointing)."""
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
    )
    return trainer.fit().model.state_dict()


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
            assert all(np.array_equal(mine[k], theirs[k]) for k in mine), "runs differ"
            variants = [
                lambda args=args: by_hand(*args),
                lambda args=args: with_trainer(*args),
                lambda args=args, e=every: with_trainer(*args, path, e),
            ]
            # Interleaved rounds: a burst of load on the shared machine hits all three alike.
            best = [float("inf")] * 3
            for _ in range(ROUNDS):
                for i, run in enumerate(variants):
                    best[i] = min(best[i], best_of(run, repeat=1))
            floor, plain, saved = best
            rows.append(
                [
                    title,
                    format_seconds(floor / epochs),
                    f"{plain / floor:.2f}x",
                    f"{saved / floor:.2f}x (every {every})",
                ]
            )
    print(
        markdown_table(
            ["run", "by hand, per epoch", "Trainer", "Trainer + checkpoint"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
