"""One rank of the multi-process checks in test_distributed.py (run under mpiexec).

    mpiexec -n 2 python tests/distributed_worker.py train OUT_DIR   # steps, saves each rank's
    mpiexec -n 2 python tests/distributed_worker.py fail            # rank 1 raises, 0 waits

``train`` builds the model of :func:`build` with a different seed on each rank (the broadcast
must make them equal), trains it on :func:`dataset` with per-rank batch ``BATCH`` for ``EPOCHS``
epochs, checks the collectives on the side, and writes ``rank<r>.npz`` into OUT_DIR.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F

BATCH, EPOCHS, SEED = 8, 3, 7


def dataset() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 5)), rng.integers(0, 3, size=64)


def build(seed: int) -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16, seed=seed), nn.ReLU(), nn.Linear(16, 3, seed=seed + 1))


def train_steps(model: nn.Module, batches) -> None:
    """SGD with momentum on cross-entropy + L2; gradients averaged over the ranks."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    weights = [model[0].weight, model[2].weight]
    for xb, yb in batches:
        loss = F.cross_entropy(model(xb), yb) + F.l2_penalty(weights, 1e-3)
        opt.zero_grad()
        loss.backward()
        cr.distributed.allreduce_gradients(model)
        opt.step()


def train(out: str) -> None:
    dist = cr.distributed
    rank, ranks = dist.get_rank(), dist.get_world_size()
    model = dist.DataParallel(build(seed=100 * rank))
    x, y = dataset()
    rng = np.random.default_rng(SEED)
    seen = []
    for _ in range(EPOCHS):
        shard = list(dist.batches(x, y, BATCH, generator=rng))
        seen.append(np.concatenate([xb[:, 0] for xb, _ in shard]))
        train_steps(model.module, shard)

    # a parameter without a gradient on rank 0 counts as zeros; one without any keeps None
    used, unused = nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(2))
    used.grad = np.full(3, 2.0 * rank) if rank else None
    dist.allreduce_gradients([used, unused])

    # batch-norm running statistics are averaged in the same Allreduce; dropout masks differ
    norm = nn.BatchNorm1d(2)
    norm(cr.tensor(np.array([[0.0, 1.0], [2.0, 3.0]]) + 10.0 * rank))
    dist.allreduce_gradients(norm)
    drop = nn.Sequential(nn.Dropout(0.5, seed=0))
    dist.seed_dropout(drop, seed=0)
    mask = drop(cr.tensor(np.ones(64))).data

    total = dist.all_reduce(np.array([rank + 1.0]))
    biggest = dist.all_reduce(float(rank), op="max")
    from_one = dist.broadcast(np.array([10.0 * rank, 1.0]), src=1)
    dist.barrier()
    np.savez(
        os.path.join(out, f"rank{rank}.npz"),
        ranks=ranks,
        seen=np.concatenate(seen),
        used=used.grad,
        unused_is_none=unused.grad is None,
        total=total,
        biggest=biggest,
        from_one=from_one,
        seed=np.uint64(dist.rank_seed(0)),
        running_mean=norm.running_mean,
        mask=mask,
        **model.module.state_dict(),
    )


def fail() -> None:
    cr.distributed.init()
    if cr.distributed.get_rank() == 1:
        raise ValueError("rank 1 exploded on purpose")
    cr.distributed.barrier()  # rank 1 never arrives: only the abort ends this rank


if __name__ == "__main__":
    train(sys.argv[2]) if sys.argv[1] == "train" else fail()
