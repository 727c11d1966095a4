"""Train a small network on the spiral data with a loss staged once by ``cr.stage``.

The loss takes the parameters as arguments, so ``cr.stage(loss, x, labels, *params, wrt=...)``
traces it once and returns straight-line NumPy code for its value and its gradients with respect
to the parameters. The training loop then calls that code: no circuit is recorded, no gate
bookkeeping, and arrays go into buffers allocated once. The same loop through the eager engine
runs alongside for comparison (same start, same updates, so the losses agree).

Run: ``.venv/bin/python examples/staged_training.py`` (add ``--source`` to print the staged code).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import chainrule as cr

HIDDEN, STEPS, LEARNING_RATE, REG = 64, 2000, 1.0, 1e-3


def loss(x, labels, w1, b1, w2, b2):
    """Mean softmax cross-entropy of a two-layer tanh network, plus L2 regularization."""
    hidden = cr.tanh(x @ w1 + b1)
    scores = hidden @ w2 + b2
    logp = cr.log_softmax(scores, axis=1)
    data_loss = -logp[np.arange(x.shape[0]), labels].mean()
    return data_loss + 0.5 * REG * ((w1 * w1).sum() + (w2 * w2).sum())


def initial_parameters(classes: int) -> list[np.ndarray]:
    gen = np.random.default_rng(1)
    return [gen.standard_normal((2, HIDDEN)) * 0.5, np.zeros(HIDDEN),
            gen.standard_normal((HIDDEN, classes)) * 0.1, np.zeros(classes)]


def train_staged(x, labels, params, steps):
    staged = cr.stage(loss, x, labels, *params, wrt=(2, 3, 4, 5))
    history = []
    for _ in range(steps):
        value, grads = staged(x, labels, *params)
        for p, g in zip(params, grads):
            p -= LEARNING_RATE * g  # the gradients are the staged code's buffers: use them now
        history.append(float(value))
    return staged, history


def train_eager(x, labels, params, steps):
    tensors = [cr.tensor(p, requires_grad=True) for p in params]
    history = []
    for _ in range(steps):
        out = loss(x, labels, *tensors)
        out.backward()
        for t in tensors:
            t.data -= LEARNING_RATE * t.grad
            t.grad = None
        history.append(out.item())
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--source", action="store_true", help="print the staged code")
    args = parser.parse_args()

    x, labels = cr.data.spiral(n_per_class=100, classes=3, seed=0)
    params = initial_parameters(classes=3)
    eager_params = [p.copy() for p in params]

    start = time.perf_counter()
    staged, history = train_staged(x, labels, params, args.steps)
    staged_time = time.perf_counter() - start
    if args.source:
        print(staged.source)
    start = time.perf_counter()
    eager_history = train_eager(x, labels, eager_params, args.steps)
    eager_time = time.perf_counter() - start

    for step in range(0, args.steps, max(args.steps // 5, 1)):
        print(f"step {step:5d}  loss {history[step]:.4f}")
    w1, b1, w2, b2 = params
    predicted = np.argmax(np.tanh(x @ w1 + b1) @ w2 + b2, axis=1)
    print(f"final loss {history[-1]:.4f} (eager engine: {eager_history[-1]:.4f}), "
          f"training accuracy {np.mean(predicted == labels):.1%}")
    print(f"{args.steps} steps: staged {staged_time:.2f} s (tracing included), "
          f"eager {eager_time:.2f} s ({eager_time / staged_time:.1f}x)")


if __name__ == "__main__":
    main()
