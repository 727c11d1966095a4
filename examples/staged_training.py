"""Train a small network on the spiral data with its loss staged once by ``cr.stage``.

The model is an ordinary ``cr.nn`` network. Its loss is written as a function of the data and of
the model's parameters, so ``cr.stage(loss, x, labels, *parameters, wrt=...)`` traces it once and
returns straight-line NumPy code for the loss and its gradients with respect to the parameters.
The training loop calls that code and updates the model's parameter arrays in place: no circuit is
recorded, no gate bookkeeping, and arrays go into buffers allocated once. The same loop through
the eager engine runs alongside for comparison (same start, same updates, so the losses agree).

Run: ``.venv/bin/python examples/staged_training.py`` (add ``--source`` to print the staged code).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import chainrule as cr

F = cr.nn.functional
HIDDEN, STEPS, LEARNING_RATE, REG = 64, 2000, 1.0, 1e-3


def loss(x, labels, w1, b1, w2, b2):
    """Mean softmax cross-entropy of the two-layer tanh network, plus L2 regularization."""
    hidden = cr.tanh(F.linear(x, w1, b1))
    data_loss = F.cross_entropy(F.linear(hidden, w2, b2), labels)
    return data_loss + 0.5 * REG * ((w1 * w1).sum() + (w2 * w2).sum())


def train_staged(x, labels, params, steps):
    """Stage the loss once, then run the loop on the staged code; returns the loss history."""
    staged = cr.stage(loss, x, labels, *params, wrt=(2, 3, 4, 5))
    history = []
    for _ in range(steps):
        value, grads = staged(x, labels, *params)
        for p, g in zip(params, grads):
            p -= LEARNING_RATE * g  # the gradients are the staged code's buffers: use them now
        history.append(float(value))
    return staged, history


def train_eager(x, labels, params, steps):
    """The same loop with the eager engine recording and sweeping every step."""
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
    model = cr.nn.Sequential(
        cr.nn.Linear(2, HIDDEN, seed=1), cr.nn.Tanh(), cr.nn.Linear(HIDDEN, 3, seed=2)
    )
    params = [p.data for p in model.parameters()]  # w1, b1, w2, b2: updated in place
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
    with cr.no_grad():
        predicted = np.argmax(model(cr.tensor(x)).data, axis=1)  # the trained model itself
    print(
        f"final loss {history[-1]:.4f} (eager engine: {eager_history[-1]:.4f}), "
        f"training accuracy {np.mean(predicted == labels):.1%}"
    )
    print(
        f"{args.steps} steps: staged {staged_time:.2f} s (tracing included), "
        f"eager {eager_time:.2f} s ({eager_time / staged_time:.1f}x)"
    )


if __name__ == "__main__":
    main()
