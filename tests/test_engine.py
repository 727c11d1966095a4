"""The engine: backward order and accumulation, deep circuits, memory release, grad mode,
``gradients`` and ``create_graph`` (scalar circuits; the tensor front end has its own tests)."""

from __future__ import annotations

import gc
import math
import weakref

import pytest

import chainrule as cr
from chainrule.engine import RELEASED, gradients, sweep_all, topological_order


def test_a_chain_of_a_million_gates_needs_no_recursion():
    x = cr.Value(0.0)
    y = x
    for _ in range(1_000_000):
        y = y + 1.0
    assert y.data == 1_000_000.0
    y.backward()
    assert x.grad == 1.0
    assert len(topological_order(y)) == 1_000_001


def test_a_deep_chain_of_mixed_gates_matches_the_product_of_local_gradients():
    x = cr.Value(0.5)
    y, expected = x, 1.0
    for _ in range(10_000):
        t = y.data * 1.0001
        y = (y * 1.0001).tanh()
        expected *= 1.0001 * (1 - math.tanh(t) ** 2)
    assert expected > 1e-6
    y.backward()
    assert math.isclose(x.grad, expected, rel_tol=1e-9)


def test_gates_are_visited_latest_made_first():
    x, y = cr.Value(3.0), cr.Value(-4.0)
    a = x * y
    b = x + y
    c = a * b
    d = c + a
    visited = []
    sweep_all(d, 1.0, lambda node, up, grads: visited.append(node) if grads is not None else None)
    assert visited == [d, c, b, a]


def test_forks_add_up_whether_or_not_the_next_node_skips_the_heap():
    x = cr.Value(0.7)
    h = x.tanh()
    sq = h * h  # one gate reaching the same node twice
    late = h.exp()  # made after sq, so it waits on the heap while sq's inputs are handled
    out = sq + late
    visited = []
    sweep_all(out, 1.0, lambda node, up, grads: visited.append(node) if grads is not None else None)
    assert visited == [out, late, sq, h]
    out.backward()
    t = math.tanh(0.7)
    assert math.isclose(x.grad, (2 * t + math.exp(t)) * (1 - t * t), rel_tol=1e-12)
    x.zero_grad()
    h = x.tanh()
    (h * h).backward()  # the held-back input is reached a second time by the same gate
    assert math.isclose(x.grad, 2 * t * (1 - t * t), rel_tol=1e-12)


def test_topological_order_puts_every_node_before_its_inputs():
    x, y = cr.Value(1.0), cr.Value(2.0)
    out = ((x * y + x) * (y - 1.0)).exp() + x
    order = topological_order(out, only_grad=False)
    position = {node: i for i, node in enumerate(order)}
    assert order[0] is out
    for node in order:
        for inp in node.inputs:
            assert position[inp] > position[node]
    assert len(order) == len(set(order))
    assert all(node.requires_grad for node in topological_order(out))


def test_cached_values_are_released_after_backward():
    x, y = cr.Value(2.0), cr.Value(3.0)
    q = x * y
    f = q.exp()
    assert q._saved == (2.0, 3.0)
    f.backward()
    assert q._saved is RELEASED and f._saved is RELEASED
    with pytest.raises(RuntimeError, match="released"):
        _ = q.saved_tensors


def test_second_backward_needs_retain_graph():
    x = cr.Value(2.0)
    f = (x * x).exp()
    f.backward()
    with pytest.raises(RuntimeError, match=r"gate '\w+'.*retain_graph=True"):
        f.backward()


def test_retain_graph_allows_a_second_backward_and_leaf_grads_accumulate():
    x = cr.Value(2.0)
    f = x * x
    f.backward(retain_graph=True)
    assert x.grad == 4.0
    f.backward()
    assert x.grad == 8.0
    x.zero_grad()
    assert x.grad == 0.0


def test_leaf_gradients_accumulate_across_circuits_until_zero_grad():
    w = cr.Value(3.0)
    (w * 2).backward()
    (w * 5).backward()
    assert w.grad == 7.0
    w.zero_grad()
    (w * 5).backward()
    assert w.grad == 5.0


def test_backward_seed_scales_every_gradient():
    x = cr.Value(2.0)
    (x * 3).backward(2.0)
    assert x.grad == 6.0


@pytest.mark.parametrize("seed", [math.inf, -math.inf, math.nan, "1", None])
def test_non_finite_or_non_numeric_seeds_are_refused(seed):
    x = cr.Value(1.0)
    y = x * 2
    if seed is None:
        y.backward(seed)  # None means the implicit seed 1
        assert x.grad == 2.0
        return
    with pytest.raises(cr.GateError, match="seed gradient must be a finite number"):
        y.backward(seed)
    assert x.grad == 0.0
    y.backward()  # the circuit is intact after a refused seed
    assert x.grad == 2.0


def test_backward_on_something_that_needs_no_gradient_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (cr.Value(1.0, requires_grad=False) * 2).backward()


def test_backward_from_a_leaf_seeds_its_own_gradient():
    x = cr.Value(5.0)
    x.backward()
    assert x.grad == 1.0


def test_a_failing_gate_backward_leaves_every_gradient_untouched():
    class Broken(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            raise ArithmeticError("broken rule")

    x, y = cr.Value(1.0), cr.Value(2.0)
    out = x * 3 + Broken.apply(y)
    with pytest.raises(ArithmeticError, match="broken rule"):
        out.backward()
    assert (x.grad, y.grad) == (0.0, 0.0)


# --- memory -------------------------------------------------------------------------------------
def _intermediate_and_output():
    x = cr.Value(1.5)
    mid = (x * 2.0).tanh()
    return x, weakref.ref(mid), mid * mid + 1.0


@pytest.mark.parametrize("run_backward", [False, True])
def test_no_reference_cycles_keep_a_circuit_alive(run_backward):
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        x, mid_ref, out = _intermediate_and_output()
        if run_backward:
            out.backward()
            assert x.grad != 0.0
        assert mid_ref() is not None
        del out
        assert mid_ref() is None  # freed by reference counting alone: no cycle holds it
    finally:
        if was_enabled:
            gc.enable()


def test_gradient_nodes_of_a_second_order_circuit_are_freed_too():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        x = cr.Value(2.0)
        (g,) = gradients(x**3, [x], create_graph=True)
        ref = weakref.ref(g)
        g.backward()
        assert x.grad == 12.0
        del g
        assert ref() is None
    finally:
        if was_enabled:
            gc.enable()


def test_intermediate_gradients_are_kept_only_when_asked():
    x = cr.Value(2.0)
    a = x * 3
    b = a.exp()
    kept = (x * 4).retain_grad()
    out = b + kept
    out.backward()
    assert a.grad is None and b.grad is None and out.grad is None
    assert kept.grad == 1.0
    assert x.grad == pytest.approx(3 * math.exp(6.0) + 4)


# --- grad mode -----------------------------------------------------------------------------------
def test_no_grad_records_nothing():
    x = cr.Value(2.0)
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * 3 + 1
        with cr.enable_grad():
            z = x * 3
    assert cr.is_grad_enabled()
    assert y.data == 7.0
    assert y.is_leaf and not y.requires_grad and y.inputs == () and y._saved is None
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_as_a_decorator_restores_the_mode():
    @cr.no_grad()
    def double(v):
        """Doubles."""
        return v * 2

    out = double(cr.Value(1.0))
    assert not out.requires_grad and cr.is_grad_enabled()
    assert double.__name__ == "double" and double.__doc__ == "Doubles."


def test_no_grad_restores_the_mode_after_an_error():
    with pytest.raises(cr.GateError):
        with cr.no_grad():
            cr.Value(-1.0).log()
    assert cr.is_grad_enabled()


# --- gradients() and create_graph ---------------------------------------------------------------
def test_gradients_returns_gradients_without_touching_grad():
    x, y, unused = cr.Value(2.0), cr.Value(3.0), cr.Value(7.0)
    f = x * y + x
    q = f.inputs[0]
    gx, gy, gq, gu = gradients(f, [x, y, q, unused])
    assert (gx, gy, gq, gu) == (4.0, 2.0, 1.0, 0.0)
    assert (x.grad, y.grad) == (0.0, 0.0)


def test_create_graph_records_the_backward_for_second_derivatives():
    x = cr.Value(2.0)
    (dx,) = gradients(x**3 + x * x, [x], create_graph=True)
    assert isinstance(dx, cr.Value) and dx.data == 3 * 4.0 + 2 * 2.0
    (ddx,) = gradients(dx, [x])
    assert ddx == 6 * 2.0 + 2.0


def test_second_derivative_through_a_fork_of_two_distinct_inputs():
    x, y = cr.Value(1.5), cr.Value(-0.5)
    f = (x * y).tanh() + x.sigmoid() * y
    gx, gy = gradients(f, [x, y], create_graph=True)
    (gxy,) = gradients(gx, [y], retain_graph=True)
    (gyx,) = gradients(gy, [x])
    assert math.isclose(gxy, gyx, rel_tol=1e-12)
    t = math.tanh(1.5 * -0.5)
    s = 1 / (1 + math.exp(-1.5))
    # d/dy [ (1 - t**2) * y + s' ] with t = tanh(xy), s' = s(1-s)
    expected = (1 - t * t) + y.data * (-2 * t * (1 - t * t) * x.data) + s * (1 - s)
    assert math.isclose(gxy, expected, rel_tol=1e-12)


def test_second_derivatives_tell_apart_inputs_that_share_one_float_object():
    a = 2.0
    x, y = cr.Value(a), cr.Value(a)  # both hold the very same float object
    assert x.data is y.data
    (gx,) = gradients(x * y, [x], create_graph=True)  # = y
    assert gradients(gx, [x, y]) == (0.0, 1.0)
    r = cr.Value(3.0)
    (gr,) = gradients(r * r.relu(), [r], create_graph=True)  # relu returns its input object
    assert gr.data == 6.0
    assert gradients(gr, [r]) == (2.0,)
