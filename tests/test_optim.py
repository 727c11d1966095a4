"""Optimizers and the step schedule against torch.optim, step for step, plus bad input."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn, optim

STEPS = 6


def run_both(make_ours, make_theirs, steps=STEPS, seed=0):
    """Apply the same gradient sequence to the same two parameters in both libraries and
    compare the parameters after every step."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    ours = [nn.Parameter(a) for a in start]
    theirs = [torch.tensor(a, requires_grad=True) for a in start]
    opt_c, opt_t = make_ours(ours), make_theirs(theirs)
    data_ids = [id(p.data) for p in ours]
    for step in range(steps):
        grads = [rng.standard_normal(a.shape) for a in start]
        for p, q, g in zip(ours, theirs, grads):
            p.grad = g.copy()
            q.grad = torch.from_numpy(g.copy())
        opt_c.step()
        opt_t.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(
                p.data, q.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}"
            )
    assert [id(p.data) for p in ours] == data_ids  # updated in place


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.3},
        {"momentum": 0.9, "nesterov": True},
        {"weight_decay": 0.1},
        {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05},
    ],
)
def test_sgd_matches_torch(options):
    run_both(
        lambda p: optim.SGD(p, lr=0.1, **options), lambda p: torch.optim.SGD(p, lr=0.1, **options)
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"alpha": 0.9, "eps": 1e-6},
        {"centered": True},
        {"momentum": 0.5},
        {"momentum": 0.5, "centered": True, "weight_decay": 0.1},
    ],
)
def test_rmsprop_matches_torch(options):
    run_both(
        lambda p: optim.RMSprop(p, lr=0.01, **options),
        lambda p: torch.optim.RMSprop(p, lr=0.01, **options),
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"betas": (0.8, 0.99), "eps": 1e-6},
        {"weight_decay": 0.1},
    ],
)
def test_adam_matches_torch(options):
    run_both(
        lambda p: optim.Adam(p, lr=0.01, **options),
        lambda p: torch.optim.Adam(p, lr=0.01, **options),
    )


def test_step_lr_matches_torch_and_drives_the_optimizer():
    p = [nn.Parameter(np.ones(2))]
    q = [torch.ones(2, requires_grad=True)]
    ours = optim.SGD(p, lr=0.5, momentum=0.9)
    theirs = torch.optim.SGD(q, lr=0.5, momentum=0.9)
    sched_c, sched_t = (
        optim.StepLR(ours, step_size=3, gamma=0.5),
        torch.optim.lr_scheduler.StepLR(theirs, step_size=3, gamma=0.5),
    )
    for epoch in range(10):
        p[0].grad = np.full(2, float(epoch + 1))
        q[0].grad = torch.full((2,), float(epoch + 1), dtype=torch.float32)
        ours.step()
        theirs.step()
        sched_c.step()
        sched_t.step()
        assert sched_c.get_last_lr() == pytest.approx(sched_t.get_last_lr(), rel=1e-12)
        np.testing.assert_allclose(p[0].data, q[0].detach().numpy(), rtol=1e-6)


def test_parameter_groups_have_their_own_options():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad = b.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.0)
    assert "Parameter Group 1" in repr(opt) and "lr: 1.0" in repr(opt)


def test_parameters_without_gradients_are_skipped_and_zero_grad_resets():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert np.all(a.data < 1.0)
    opt.zero_grad(set_to_none=False)
    assert np.all(a.grad == 0) and np.all(b.grad == 0)
    opt.zero_grad()
    assert a.grad is None


def test_training_a_model_with_each_optimizer_lowers_the_loss():
    x, y = cr.data.spiral(20, 3, seed=1)
    for make in (
        lambda p: optim.SGD(p, lr=0.5, momentum=0.9, nesterov=True),
        lambda p: optim.RMSprop(p, lr=0.01),
        lambda p: optim.Adam(p, lr=0.05),
    ):
        model = nn.Sequential(nn.Linear(2, 16, seed=0), nn.ReLU(), nn.Linear(16, 3, seed=1))
        opt = make(model.parameters())
        losses = []
        for _ in range(30):
            loss = nn.functional.cross_entropy(model(x), y)
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda p: optim.SGD(p[0], lr=0.1), "got a single Tensor"),
        (lambda p: optim.SGD([np.ones(2)], lr=0.1), "leaf tensors that require grad, got ndarray"),
        (lambda p: optim.SGD([cr.tensor([1.0])], lr=0.1), "require grad, got Tensor of shape"),
        (lambda p: optim.SGD([p[0], p[0]], lr=0.1), "appears more than once"),
        (lambda p: optim.SGD(p, lr=-1), "lr must be non-negative"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be non-negative"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be non-negative"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov momentum needs momentum > 0"),
        (lambda p: optim.SGD([{"params": p, "beta": 1}], lr=0.1), "unknown option"),
        (lambda p: optim.SGD([{"weights": p}], lr=0.1), "a dict with 'params'"),
        (lambda p: optim.RMSprop(p, alpha=1.5), "alpha must be in"),
        (lambda p: optim.RMSprop(p, eps=-1), "eps must be non-negative"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas must be two numbers"),
        (lambda p: optim.StepLR(p, 2), "expected a cr.optim optimizer"),
        (lambda p: optim.StepLR(optim.SGD(p), 0), "step_size must be a positive integer"),
        (lambda p: optim.StepLR(optim.SGD(p), 2, gamma=-1), "gamma must be non-negative"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make([nn.Parameter(np.ones(2))])
