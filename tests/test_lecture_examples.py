"""Every worked scalar example of the backprop notes, reproduced to 1e-12 against references staged
by hand in this file (plain ``math``, one line per gate), and to the notes' printed digits."""

from __future__ import annotations

import math

import pytest

import chainrule as cr

TOL = 1e-12


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


# --- f = (x + y) z -------------------------------------------------------------------------------
def test_sum_times_z_circuit():
    x, y, z = cr.Value(-2.0, name="x"), cr.Value(5.0, name="y"), cr.Value(-4.0, name="z")
    q = x + y
    f = q * z
    assert (q.data, f.data) == (3.0, -12.0)
    f.backward()
    # by hand: df/dq = z, df/dz = q; the add gate hands df/dq to x and y unchanged
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_mul_gate_example():
    x, y = cr.Value(4.0), cr.Value(-3.0)
    f = x * y
    f.backward()
    assert f.data == -12.0
    assert (x.grad, y.grad) == (-3.0, 4.0)  # mul swaps its inputs


def test_add_and_max_gate_examples():
    x, y = cr.Value(4.0), cr.Value(-3.0)
    (x + y).backward()
    assert (x.grad, y.grad) == (1.0, 1.0)
    a, b = cr.Value(4.0), cr.Value(2.0)
    m = cr.maximum(a, b)
    m.backward()
    assert (m.data, a.grad, b.grad) == (4.0, 1.0, 0.0)


# --- the 2-D sigmoid neuron ----------------------------------------------------------------------
W = (2.0, -3.0, -3.0)
X = (-1.0, -2.0)


def neuron_by_hand() -> tuple[float, list[float], list[float]]:
    """Forward and backward of sigmoid(w0 x0 + w1 x1 + w2), staged one gate per line."""
    (w0, w1, w2), (x0, x1) = W, X
    p0 = w0 * x0
    p1 = w1 * x1
    s = p0 + p1
    dot = s + w2
    neg = -dot
    e = math.exp(neg)
    den = e + 1.0
    out = 1.0 / den
    # backward, from the output back to the inputs
    d_den = -1.0 / (den * den)
    d_e = d_den
    d_neg = e * d_e
    d_dot = -1.0 * d_neg
    d_s, d_w2 = d_dot, d_dot
    d_p0, d_p1 = d_s, d_s
    d_w0, d_x0 = x0 * d_p0, w0 * d_p0
    d_w1, d_x1 = x1 * d_p1, w1 * d_p1
    return out, [d_x0, d_x1], [d_w0, d_w1, d_w2]


def neuron_from_primitive_gates() -> tuple[cr.Value, list[cr.Value], list[cr.Value]]:
    w = [cr.Value(v, name=f"w{i}") for i, v in enumerate(W)]
    x = [cr.Value(v, name=f"x{i}") for i, v in enumerate(X)]
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    f = 1 / ((-dot).exp() + 1)
    return f, x, w


def neuron_with_sigmoid_gate() -> tuple[cr.Value, list[cr.Value], list[cr.Value]]:
    w = [cr.Value(v) for v in W]
    x = [cr.Value(v) for v in X]
    f = cr.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    return f, x, w


def neuron_with_fused_sum() -> tuple[cr.Value, list[cr.Value], list[cr.Value]]:
    w = [cr.Value(v) for v in W]
    x = [cr.Value(v) for v in X]
    return cr.linear_combination(w[:2], x, w[2]).sigmoid(), x, w


@pytest.mark.parametrize(
    "build", [neuron_from_primitive_gates, neuron_with_sigmoid_gate, neuron_with_fused_sum]
)
def test_sigmoid_neuron(build):
    f, x, w = build()
    f.backward()
    out, dx, dw = neuron_by_hand()
    assert close(f.data, out)
    assert all(close(v.grad, d) for v, d in zip(x, dx))
    assert all(close(v.grad, d) for v, d in zip(w, dw))
    # the notes' printed digits
    assert round(f.data, 2) == 0.73
    assert [round(v.grad, 2) for v in x] == [0.39, -0.59]
    assert [round(v.grad, 2) for v in w] == [-0.2, -0.39, 0.2]


def test_sigmoid_neuron_gates_and_their_gradients_match_the_notes_figure():
    f, _, _ = neuron_from_primitive_gates()
    circuit = cr.trace(f)
    assert [w.gate.name for w in circuit.gates] == [
        "mul",
        "mul",
        "add",
        "add",
        "neg",
        "exp",
        "translate",
        "reciprocal",
    ]
    steps = circuit.backward_steps()
    upstream = {s.wire.gate.name: round(s.upstream, 2) for s in steps if s.wire.gate.name != "mul"}
    # 1/x receives 1.00 and passes -1/1.37**2 = -0.53; +1 passes it on; exp turns it into -0.20;
    # *-1 flips it to 0.20, which the add gates distribute
    assert upstream == {
        "reciprocal": 1.0,
        "translate": -0.53,
        "exp": -0.53,
        "neg": -0.2,
        "add": 0.2,
    }
    assert round(circuit.wire(f.inputs[0]).data, 2) == 1.37


def test_sigmoid_gate_local_gradient_is_one_minus_s_times_s():
    x = cr.Value(1.0)
    s = x.sigmoid()
    s.backward()
    assert round(s.data, 2) == 0.73
    assert close(x.grad, (1 - s.data) * s.data)
    assert round(x.grad, 1) == 0.2


# --- the staged example --------------------------------------------------------------------------
def staged_by_hand(x: float, y: float) -> tuple[float, float, float]:
    """f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2): forward cached, backward += at forks."""

    def sig(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    s_y = sig(y)
    top = x + s_y
    s_x = sig(x)
    x_plus_y = x + y
    squared = x_plus_y**2
    bottom = s_x + squared
    inv_bottom = 1.0 / bottom
    f = top * inv_bottom
    # backward: each line multiplies a local gradient by the gradient arriving from above
    d_top = inv_bottom
    d_inv_bottom = top
    d_bottom = (-1.0 / bottom**2) * d_inv_bottom
    d_s_x = d_bottom
    d_squared = d_bottom
    d_x_plus_y = 2 * x_plus_y * d_squared
    dx = d_x_plus_y
    dy = d_x_plus_y
    dx += (1 - s_x) * s_x * d_s_x  # x forks: its gradients add
    dx += d_top
    d_s_y = d_top
    dy += (1 - s_y) * s_y * d_s_y
    return f, dx, dy


def test_staged_example():
    x, y = cr.Value(3.0, name="x"), cr.Value(-4.0, name="y")
    f = (x + cr.sigmoid(y)) / (cr.sigmoid(x) + (x + y) ** 2)
    f.backward()
    ref, dx, dy = staged_by_hand(3.0, -4.0)
    assert close(f.data, ref)
    assert close(x.grad, dx)
    assert close(y.grad, dy)


# --- add, mul and max patterns -------------------------------------------------------------------
def test_add_mul_max_pattern_circuit():
    x, y = cr.Value(3.0, name="x"), cr.Value(-4.0, name="y")
    z, w = cr.Value(2.0, name="z"), cr.Value(-1.0, name="w")
    q = x * y
    m = cr.maximum(z, w)
    s = q + m
    f = s * 2
    for node in (q, m, s):
        node.retain_grad()
    f.backward()
    assert (q.data, m.data, s.data, f.data) == (-12.0, 2.0, -10.0, -20.0)
    assert (s.grad, q.grad, m.grad) == (2.0, 2.0, 2.0)  # add distributes 2.00 to both inputs
    assert (z.grad, w.grad) == (2.0, 0.0)  # max routes it to the larger input
    assert (x.grad, y.grad) == (-8.0, 6.0)  # mul swaps: -4.00 x 2.00 and 3.00 x 2.00


# --- gradients add at forks ----------------------------------------------------------------------
def test_gradients_add_at_forks():
    a = cr.Value(1.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0
    x = cr.Value(3.0)
    (x * x).backward()
    assert x.grad == 6.0
