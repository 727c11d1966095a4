"""The notes' two-layer network as a benchmark workload, shared by bench_tensor.py and
bench_stage.py: its sizes, its seeded data, the hand-written NumPy floor and chainrule's loss.

N, D_in, H, D_out = 64, 1000, 100, 10; a sigmoid hidden layer; squared error summed; plain SGD
with learning rate 1e-4; float64. Every loop returns the loss of its last step.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr

N, D_IN, H, D_OUT = 64, 1000, 100, 10
LEARNING_RATE = 1e-4
SEED = 0


def two_layer_data() -> tuple[np.ndarray, ...]:
    """x, y, w1, w2 from one seeded generator (standard normal samples)."""
    gen = np.random.default_rng(SEED)
    x, y = gen.standard_normal((N, D_IN)), gen.standard_normal((N, D_OUT))
    w1, w2 = gen.standard_normal((D_IN, H)), gen.standard_normal((H, D_OUT))
    return x, y, w1, w2


def numpy_floor(steps: int, x, y, w1, w2) -> float:
    """The floor: forward and a hand-derived backward in plain NumPy, updating w1, w2 in place."""
    loss = 0.0
    for _ in range(steps):
        hidden = 1.0 / (1.0 + np.exp(-(x @ w1)))
        error = hidden @ w2 - y
        loss = np.sum(error * error)
        d_pred = 2.0 * error
        d_w2 = hidden.T @ d_pred
        d_hidden = d_pred @ w2.T
        d_w1 = x.T @ (d_hidden * hidden * (1.0 - hidden))
        w1 -= LEARNING_RATE * d_w1
        w2 -= LEARNING_RATE * d_w2
    return float(loss)


def two_layer_loss(x, y, w1, w2):
    """The same loss written with chainrule's gates (for the eager engine and for cr.stage)."""
    hidden = cr.sigmoid(x @ w1)
    y_pred = hidden @ w2
    return ((y_pred - y) ** 2).sum()


def chainrule_eager(steps: int, x, y, w1, w2) -> float:
    """The same loop with chainrule's eager engine recording and sweeping every step; updates the
    caller's w1, w2 in place like the floor."""
    t1, t2 = cr.tensor(w1, requires_grad=True), cr.tensor(w2, requires_grad=True)
    t1.data, t2.data = w1, w2
    loss = None
    for _ in range(steps):
        loss = two_layer_loss(x, y, t1, t2)
        loss.backward()
        t1.data -= LEARNING_RATE * t1.grad
        t2.data -= LEARNING_RATE * t2.grad
        t1.grad = t2.grad = None
    return loss.item()
