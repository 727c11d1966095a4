"""End-to-end training with cr.nn and cr.optim: the notes' two-layer NumPy loop reproduced step
for step, and the accuracies of the CS231n spiral case study and of digits."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F


def numpy_two_layer(x, y, w1, w2, steps, lr=1e-4):
    """The notes' loop: sigmoid hidden layer, no biases, summed squared error, plain SGD."""
    w1, w2 = w1.copy(), w2.copy()
    losses = []
    for _ in range(steps):
        h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return np.array(losses), w1, w2


def chainrule_two_layer(x, y, w1, w2, steps, lr=1e-4):
    """The same network as cr.nn modules; Linear weights are the transposed NumPy matrices."""
    d_in, h = w1.shape
    d_out = w2.shape[1]
    model = nn.Sequential(
        nn.Linear(d_in, h, bias=False), nn.Sigmoid(), nn.Linear(h, d_out, bias=False)
    )
    model.load_state_dict({"0.weight": w1.T, "2.weight": w2.T})
    loss_fn = nn.MSELoss(reduction="sum")
    opt = optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.array(losses), model[0].weight.data.T, model[2].weight.data.T


def notes_setup(n, d_in, h, d_out, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d_in)),
        rng.standard_normal((n, d_out)),
        rng.standard_normal((d_in, h)),
        rng.standard_normal((h, d_out)),
    )


@pytest.mark.parametrize("sizes,steps", [((64, 1000, 100, 10), 10), ((64, 50, 100, 10), 300)])
def test_notes_two_layer_loop_matches_numpy_at_every_step(sizes, steps):
    x, y, w1, w2 = notes_setup(*sizes)
    ref, ref_w1, ref_w2 = numpy_two_layer(x, y, w1, w2, steps)
    got, got_w1, got_w2 = chainrule_two_layer(x, y, w1, w2, steps)
    assert ref[-1] < ref[0]  # it does learn
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)
    np.testing.assert_allclose(got_w1, ref_w1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_w2, ref_w2, rtol=1e-9, atol=1e-12)


def spiral_model(hidden, seed=0):
    """Case-study initialization: weights 0.01 * N(0, 1), biases zero."""
    rng = np.random.default_rng(seed)
    if hidden is None:
        model = nn.Linear(2, 3)
        layers = [model]
    else:
        model = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        layers = [model[0], model[2]]
    for layer in layers:
        layer.weight.data[...] = 0.01 * rng.standard_normal(layer.weight.shape)
        layer.bias.data[...] = 0.0
    return model, [layer.weight for layer in layers]


def train_full_batch(model, weights, x, y, steps, lr=1.0, reg=1e-3):
    opt = optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y) + F.l2_penalty(weights, reg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with cr.no_grad():
        return float(np.mean(model(x).data.argmax(axis=1) == y))


def test_spiral_linear_softmax_classifier_reaches_about_half():
    x, y = cr.data.spiral(100, 3, seed=0)
    model, weights = spiral_model(None)
    accuracy = train_full_batch(model, weights, x, y, steps=200)
    assert 0.49 <= accuracy <= 0.55


def test_spiral_two_layer_relu_net_reaches_98_percent():
    x, y = cr.data.spiral(100, 3, seed=0)
    model, weights = spiral_model(100)
    accuracy = train_full_batch(model, weights, x, y, steps=10000)  # the case study's run
    assert accuracy >= 0.98


def test_digits_mlp_reaches_97_percent_test_accuracy():
    split = cr.data.digits(seed=0)
    model = nn.Sequential(nn.Linear(64, 100, seed=1), nn.ReLU(), nn.Linear(100, 10, seed=2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = np.random.default_rng(0)
    for _ in range(15):
        for xb, yb in cr.data.batches(split.x_train, split.y_train, 32, generator=gen):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with cr.no_grad():
        accuracy = np.mean(model(split.x_test).data.argmax(axis=1) == split.y_test)
    assert accuracy >= 0.97
