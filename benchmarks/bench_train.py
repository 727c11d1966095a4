"""One epoch of digits training (64-100-10 ReLU MLP, softmax cross-entropy, plain SGD) with
chainrule, with a hand-written NumPy forward/backward/SGD (the floor), and with PyTorch eager.

All three start from the same weights and see the same mini-batches in the same order; the
script checks that they end the epoch with the same weights before it reports any timing.
Run pinned to one thread:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_train.py
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import best_of, format_seconds, markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

HIDDEN = 100
LR = 0.1


def make_batches(batch_size: int) -> list:
    """The digits training set cut into a fixed, seeded sequence of mini-batches."""
    split = cr.data.digits(seed=0)
    return list(cr.data.batches(split.x_train, split.y_train, batch_size, seed=0))


def initial_weights() -> dict:
    """Seeded PyTorch-style initial weights of the MLP, as plain arrays."""
    model = nn.Sequential(nn.Linear(64, HIDDEN, seed=1), nn.ReLU(), nn.Linear(HIDDEN, 10, seed=2))
    return model.state_dict()


def chainrule_epoch(state: dict, batches: list):
    """A chainrule model and optimizer, and the function that runs one epoch with them."""
    model = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    model.load_state_dict(state)
    opt = optim.SGD(model.parameters(), lr=LR)

    def epoch() -> None:
        for xb, yb in batches:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    return model.state_dict, epoch


def numpy_epoch(state: dict, batches: list):
    """Hand-written forward (including the loss value, as every training loop reports it),
    backward and SGD update of the same MLP: the floor."""
    w1, b1 = state["0.weight"].copy(), state["0.bias"].copy()
    losses = []
    w2, b2 = state["2.weight"].copy(), state["2.bias"].copy()

    def epoch() -> None:
        nonlocal w1, b1, w2, b2
        for xb, yb in batches:
            n = xb.shape[0]
            z = xb @ w1.T + b1
            h = np.maximum(z, 0)
            s = h @ w2.T + b2
            s = s - s.max(axis=1, keepdims=True)
            e = np.exp(s)
            total = e.sum(axis=1, keepdims=True)
            rows = np.arange(n)
            losses.append((np.log(total[:, 0]) - s[rows, yb]).mean())
            ds = e / total
            ds[rows, yb] -= 1
            ds /= n
            dw2 = ds.T @ h
            db2 = ds.sum(axis=0)
            dh = ds @ w2
            dh *= z > 0
            dw1 = dh.T @ xb
            db1 = dh.sum(axis=0)
            w1 -= LR * dw1
            b1 -= LR * db1
            w2 -= LR * dw2
            b2 -= LR * db2

    def weights() -> dict:
        return {"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2}

    return weights, epoch


def torch_epoch(state: dict, batches: list):
    """The same model, loss and SGD in PyTorch eager mode (float64, one thread)."""
    import torch

    torch.set_num_threads(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10)
    ).double()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    loss_fn = torch.nn.functional.cross_entropy

    def epoch() -> None:
        for xb, yb in data:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def weights() -> dict:
        return {k: v.detach().numpy() for k, v in model.state_dict().items()}

    return weights, epoch


def check_same(reference: dict, other: dict, name: str) -> None:
    """Refuse to time implementations that do not compute the same thing."""
    for key, value in reference.items():
        if not np.allclose(value, other[key], rtol=1e-9, atol=1e-12):
            raise SystemExit(f"{name} disagrees with the NumPy floor on {key!r} after one epoch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    try:
        import torch  # noqa: F401

        runners = {
            "NumPy floor": numpy_epoch,
            "chainrule": chainrule_epoch,
            "PyTorch eager": torch_epoch,
        }
    except ImportError:
        runners = {"NumPy floor": numpy_epoch, "chainrule": chainrule_epoch}

    state = initial_weights()
    rows = []
    for size in args.batch_sizes:
        batches = make_batches(size)
        reference = None
        epochs = {}
        for name, make in runners.items():
            weights, epoch = make(state, batches)
            epoch()
            if reference is None:
                reference = {k: v.copy() for k, v in weights().items()}
            else:
                check_same(reference, weights(), name)
            epochs[name] = epoch
        # Round robin, so that a busy spell on the shared machine slows every contender alike.
        times = {name: float("inf") for name in epochs}
        for _ in range(args.repeat):
            for name, epoch in epochs.items():
                times[name] = min(times[name], best_of(epoch, repeat=1))
        floor = times["NumPy floor"]
        for name, seconds in times.items():
            rows.append(
                [size, len(batches), name, format_seconds(seconds), f"{seconds / floor:.2f}x"]
            )
    print(
        "digits, one epoch (1438 samples), 64-100-10 ReLU MLP, cross-entropy, SGD; "
        f"best of {args.repeat}"
    )
    print(markdown_table(["batch", "steps", "implementation", "epoch", "vs NumPy floor"], rows))


if __name__ == "__main__":
    main()
