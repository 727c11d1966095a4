"""Version counters: data edited in place after a gate saved it makes that gate's backward refuse
(as PyTorch's "modified by an inplace operation"), through every in-place path chainrule offers."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim


def test_editing_saved_data_in_place_is_refused_naming_the_gate():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    y = (x * x).sum()
    x.data *= 10
    with pytest.raises(
        cr.GateError,
        match=r"gate 'mul': its input 0 'x' of shape \(3,\) was "
        r"modified by an inplace operation",
    ):
        y.backward()
    assert x.grad is None  # nothing was accumulated


def test_an_optimizer_step_between_forward_and_a_retained_backward_is_refused():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = (model(np.ones((4, 3))) ** 2).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(cr.GateError, match="modified by an inplace operation"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_is_refused():
    model = nn.Linear(2, 1, bias=False)
    loss = (model(np.ones((1, 2))) ** 2).sum()
    model.load_state_dict({"weight": np.zeros((1, 2))})
    with pytest.raises(cr.GateError, match="modified by an inplace operation"):
        loss.backward()


def test_create_graph_backward_checks_too():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.data += 1
    with pytest.raises(cr.GateError, match="modified by an inplace operation"):
        cr.engine.gradients(y, [x], create_graph=True)


def test_gates_that_did_not_save_the_edited_value_still_work():
    """As in PyTorch: add saves nothing, exp saves only its output."""
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum() + x.exp().sum()
    expected = 1 + np.exp([1.0, 2.0])
    x.data *= 3
    y.backward()
    np.testing.assert_allclose(x.grad, expected)


def test_rebinding_data_to_a_new_array_keeps_the_recorded_values():
    """``x.data = other`` leaves the saved array intact, so the gradient is the recorded one."""
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.data = np.array([5.0, 5.0])
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_a_training_loop_edits_between_steps_without_complaint():
    w = cr.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.data, [0.062, -0.062])  # PyTorch's SGD gives the same


def test_value_data_assignment_keeps_the_recorded_gradient():
    a = cr.Value(2.0)
    b = a * a
    a.data = 5.0
    b.backward()
    assert a.grad == 4.0
