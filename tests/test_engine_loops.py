"""The tuned backward loop and the plain reference loop agree (a differential test on random
circuits with forks, constants and retain_grad), and the reference loop serves the readers."""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule import engine

UNARY = ("tanh", "sigmoid", "scale", "shift", "square")
BINARY = ("add", "sub", "mul")


def _program():
    """A random circuit: each step applies a gate to earlier values (so values fan out)."""
    step = st.one_of(
        st.tuples(st.sampled_from(UNARY), st.integers(0, 50)),
        st.tuples(st.sampled_from(BINARY), st.integers(0, 50), st.integers(0, 50)),
    )
    return st.tuples(
        st.lists(step, min_size=1, max_size=12),
        st.lists(st.booleans(), min_size=12, max_size=12),  # which steps retain_grad
        st.integers(0, 2**16),
    )


def _run(lib, steps, leaves, consts, retain):
    """Build the circuit with ``lib`` ('cr' or 'torch'); return leaves, output, retained nodes."""
    values = list(leaves) + list(consts)
    kept = []
    for k, (op, *picks) in enumerate(steps):
        a = values[picks[0] % len(values)]
        if op == "tanh":
            v = a.tanh()
        elif op == "sigmoid":
            v = a.sigmoid()
        elif op == "scale":
            v = a * 1.5
        elif op == "shift":
            v = a + consts[0]
        elif op == "square":
            v = a * a
        else:
            b = values[picks[1] % len(values)]
            v = {"add": a + b, "sub": a - b, "mul": a * b}[op]
        if retain[k] and v.requires_grad:
            v.retain_grad()
            kept.append(v)
        values.append(v)
    out = values[-1]
    for v in values[len(leaves) + len(consts) :]:
        out = out + v  # every step feeds the output: more forks
    return out.sum(), kept


def _data(seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, 3) for _ in range(2)], [rng.uniform(-1, 1, 3) for _ in range(2)]


@given(_program())
def test_tuned_and_reference_loops_give_the_same_gradients(program):
    steps, retain, seed = program
    xs, cs = _data(seed)
    no_retain = [False] * len(retain)

    leaves = [cr.tensor(x, requires_grad=True) for x in xs]
    out, _ = _run("cr", steps, leaves, [cr.tensor(c) for c in cs], no_retain)
    if not out.requires_grad:
        return
    assert not engine._marked
    out.backward()  # the tuned loop
    tuned = [x.grad for x in leaves]

    ref_leaves = [cr.tensor(x, requires_grad=True) for x in xs]
    out, kept = _run("cr", steps, ref_leaves, [cr.tensor(c) for c in cs], retain)
    engine._reference_sweep(out, np.array(1.0), False, False)
    for a, b in zip(tuned, (x.grad for x in ref_leaves)):
        if a is None or b is None:
            assert a is None and b is None
        else:
            np.testing.assert_array_equal(a, b)

    t_leaves = [torch.tensor(x, requires_grad=True) for x in xs]
    t_out, t_kept = _run("torch", steps, t_leaves, [torch.tensor(c) for c in cs], retain)
    t_out.backward()
    for mine, theirs in zip([*ref_leaves, *kept], [*t_leaves, *t_kept]):
        if theirs.grad is None:
            assert mine.grad is None
        else:
            np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_backward_with_retain_grad_uses_the_reference_loop_and_fills_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = (x * x).retain_grad()
    (h * 3).sum().backward()
    np.testing.assert_array_equal(h.grad, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    del h
    assert not engine._marked  # the mark dies with the node: later backwards are tuned again


def test_observe_is_called_after_each_gate_backward_with_nodes_it_records():
    """Readers see each gate's step right after its backward returns, so nodes recorded during
    that backward (create_graph) are the ones stamped since the previous step."""
    x = cr.tensor([0.5, -1.0], requires_grad=True)
    y = (x.tanh() * x).sum()
    windows = []
    last = [engine.next_stamp()]

    def observe(node, upstream, input_grads):
        now = engine.next_stamp()
        windows.append((node.gate.name if node.gate else "leaf", last[0] - now > 1))
        last[0] = now

    seed = y._constant(np.array(1.0))
    with cr.enable_grad():
        engine._reference_sweep(y, seed, True, True, None, observe)
    assert [name for name, _ in windows] == ["sum", "mul", "tanh", "leaf"]
    assert dict(windows)["mul"] and dict(windows)["tanh"]  # their backward recorded gates


def test_sweep_all_and_gradients_keep_working():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    seen = []
    engine.sweep_all(y, np.array(1.0), lambda n, g, gi: seen.append(n))
    assert seen[-1] is x and x.grad is None
    (g,) = engine.gradients(y, [x])
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_ctx_inputs_options_and_needs_input_grad_are_public():
    class Shift(cr.Gate):
        @staticmethod
        def forward(ctx, x, y, c=0.0):
            assert ctx.inputs[0].data is x and ctx.options == {"c": c}
            return x + y + c

        @staticmethod
        def backward(ctx, grad):
            assert ctx.needs_input_grad == (True, False)
            return grad, None

    x = cr.tensor([1.0], requires_grad=True)
    out = Shift.apply(x, cr.tensor([2.0]), c=1.0)
    assert out.inputs[0] is x and out.options == {"c": 1.0}
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])
    assert x.inputs == () and x.options == {}
