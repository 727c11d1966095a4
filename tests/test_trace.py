"""cr.trace: the recorded circuit as wires in topological order with names, gates, inputs, cached
values, and every gate's upstream and input gradients via backward_steps."""

from __future__ import annotations

import pytest

import chainrule as cr


def sum_times_z():
    x, y, z = cr.Value(-2.0, name="x"), cr.Value(5.0, name="y"), cr.Value(-4.0, name="z")
    return (x, y, z), (x + y) * z


def test_wires_are_in_topological_order_inputs_first():
    (x, y, z), f = sum_times_z()
    circuit = cr.trace(f)
    names = [w.name for w in circuit.wires]
    assert set(names) == {"x", "y", "z", "t1", "t2"}
    position = {w.name: w.index for w in circuit.wires}
    assert [w.index for w in circuit.wires] == list(range(5))
    for wire in circuit.gates:
        for inp in circuit.inputs_of(wire):
            assert position[inp.name] < wire.index
    assert circuit.output.node is f and circuit.output.index == len(circuit) - 1
    assert [w.name for w in circuit.inputs] == [n for n in names if n in "xyz"]
    assert [w.gate.name for w in circuit.gates] == ["add", "mul"]
    assert [w.name for w in circuit] == names


def test_inputs_of_a_gate_keep_argument_order_and_forks():
    x = cr.Value(3.0, name="x")
    sq = x * x
    circuit = cr.trace(sq)
    assert [w.name for w in circuit.inputs_of(circuit.output)] == ["x", "x"]


def test_default_names_for_inputs_constants_and_gates():
    a, b = cr.Value(1.0), cr.Value(2.0)
    out = (a * b) / 4 + cr.Value(7.0, name="t1")
    circuit = cr.trace(out)
    by_node = {w.node: w.name for w in circuit.wires}
    assert by_node[a] == "x0" and by_node[b] == "x1"
    constants = [w for w in circuit.wires if w.is_constant]
    assert [w.name for w in constants] == ["c0"] and constants[0].data == 4.0
    gate_names = [w.name for w in circuit.gates]
    assert len(set(gate_names)) == 3 and "t1" not in gate_names  # the user's t1 keeps its name
    assert circuit.wires[-2].name == "t1" and circuit.wires[-2].data == 7.0


def test_repeated_user_names_are_made_unique():
    a, b = cr.Value(1.0, name="w"), cr.Value(2.0, name="w")
    names = sorted(w.name for w in cr.trace(a + b).wires if w.is_leaf)
    assert names == ["w", "w_2"]


def test_cached_values_are_the_gates_forward_cache():
    (x, y, z), f = sum_times_z()
    circuit = cr.trace(f)
    add, mul = circuit.gates
    assert add.cached == () and mul.cached == (3.0, -4.0)
    assert circuit.wire(x).cached == ()
    assert cr.trace(z.sigmoid()).output.cached == (z.sigmoid().data,)


def test_released_caches_are_recomputed_from_the_inputs_values():
    (x, y, z), f = sum_times_z()
    circuit = cr.trace(f)
    before = circuit.backward_steps()
    f.backward()
    assert circuit.output.cached == (3.0, -4.0)
    after = circuit.backward_steps()
    assert [(s.wire.name, s.upstream, s.input_grads) for s in after] == [
        (s.wire.name, s.upstream, s.input_grads) for s in before
    ]
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)  # the reader touched no .grad
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        f.backward()  # the record stays released: reading restored nothing


def test_a_gate_whose_forward_differs_when_rerun_is_refused_by_name():
    import numpy as np

    class Noisy(cr.Gate):
        calls = 0

        @staticmethod
        def forward(ctx, x):
            Noisy.calls += 1
            ctx.save_for_backward(x)
            return x + Noisy.calls

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    x = cr.tensor(np.ones(3), requires_grad=True, name="x")
    out = Noisy.apply(x).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="gate 'noisy'.*different value.*retain_graph=True"):
        cr.trace(out).backward_steps()


def test_backward_steps_report_upstream_and_input_gradients_of_every_gate():
    (x, y, z), f = sum_times_z()
    circuit = cr.trace(f)
    steps = circuit.backward_steps()
    assert [s.wire.name for s in steps] == ["t2", "t1"]
    mul, add = steps
    assert mul.upstream == 1.0 and mul.input_grads == (-4.0, 3.0)
    assert [w.name for w in mul.inputs] == ["t1", "z"]
    assert add.upstream == -4.0 and add.input_grads == (-4.0, -4.0)
    # a full sweep that leaves the circuit and every .grad alone
    assert (x.grad, y.grad, z.grad) == (0.0, 0.0, 0.0)
    assert circuit.backward_steps(2.0)[0].upstream == 2.0
    f.backward()
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_gradients_by_wire_name_add_at_forks():
    x = cr.Value(3.0, name="x")
    y = cr.Value(-4.0, name="y")
    circuit = cr.trace(x * y + x)
    grads = circuit.gradients()
    assert grads["x"] == -4.0 + 1.0 and grads["y"] == 3.0
    assert grads[circuit.output.name] == 1.0


def test_wire_grad_reads_what_backward_left():
    (x, _, _), f = sum_times_z()
    circuit = cr.trace(f)
    f.backward()
    assert circuit.wire(x).grad == -4.0
    assert circuit.output.grad is None  # intermediate: not retained


def test_labels_show_constant_gates_like_the_notes():
    x = cr.Value(1.0, name="x")
    out = 1 / ((-x * 2).exp() + 1)
    labels = [w.label for w in cr.trace(out).gates]
    assert labels == ["*-1", "*2", "exp", "+1", "1/x"]


def test_repr_lists_every_wire():
    (_, _, _), f = sum_times_z()
    text = repr(cr.trace(f))
    assert text.splitlines()[0] == "Circuit(3 inputs, 2 gates)"
    assert "t1 = add(x, y) -> 3" in text and "t2 = mul(t1, z) -> -12" in text
    assert "x = input -2" in text


def test_a_circuit_without_gradients_has_no_backward_steps():
    out = cr.Value(2.0, requires_grad=False) * 3
    circuit = cr.trace(out)
    assert circuit.backward_steps() == [] and circuit.gates == []
    assert circuit.output.is_constant


def test_trace_needs_a_node():
    with pytest.raises(TypeError, match="trace\\(\\) needs a Value or Tensor, got float"):
        cr.trace(1.0)


def test_trace_of_a_deep_chain():
    x = cr.Value(0.0, name="x")
    y = x
    for _ in range(50_000):
        y = y + 1.0
    circuit = cr.trace(y)
    assert len(circuit) == 50_001 and circuit.wires[0].name == "x"
    assert len(circuit.backward_steps()) == 50_000


def test_a_networks_values_have_state_dict_names_the_data_x_and_the_output_loss():
    from chainrule import nn
    from chainrule.nn import functional as F

    x, y = cr.data.spiral(n_per_class=4, classes=3, seed=0)
    model = nn.Sequential(nn.Linear(2, 5, seed=0), nn.ReLU(), nn.Linear(5, 3, seed=1))
    circuit = cr.trace(F.cross_entropy(model(x), y))
    leaves = [w.name for w in circuit.wires if w.is_leaf]
    assert leaves == ["x", "0.weight", "0.bias", "2.weight", "2.bias"]
    assert circuit.output.name == "loss" and all(w.named for w in circuit.wires if w.is_leaf)
    data = cr.tensor(x, name="batch")
    assert cr.trace(F.cross_entropy(model(data), y)).wires[0].name == "batch"


def test_nested_modules_name_parameters_from_the_root_like_the_state_dict():
    from chainrule import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 4)
            self.body = nn.Sequential(nn.ReLU(), nn.Linear(4, 3))

        def forward(self, x):
            return self.body(self.fc1(x))

    net = Net()
    assert {p.state_name for p in net.parameters()} == set(net.state_dict())
    out = net(cr.tensor([[1.0, 2.0]])).sum()
    names = {w.name for w in cr.trace(out).wires}
    assert {"fc1.weight", "fc1.bias", "body.1.weight", "body.1.bias", "x", "loss"} <= names
    free = cr.tensor([1.0], requires_grad=True)
    assert cr.trace((free * 2).sum()).output.name == "t2"  # no module: default names
