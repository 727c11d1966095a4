"""cr.explain: the notes' numbers step by step, read from the gates, exactly the engine's."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.explain import Explanation, Row, format_value, formula, shape_text
from chainrule.gate import Gate
from chainrule.notes import EXAMPLES, chain, neuron, patterns, staged


def _two(x):
    return round(float(x), 2)


def test_neuron_steps_give_the_notes_numbers():
    e = cr.explain(neuron())
    assert isinstance(e, Explanation) and all(isinstance(r, Row) for r in e.rows)
    assert [r.label for r in e.rows[:6]] == ["1/x", "+1", "exp", "*-1", "+", "+"]
    first = [_two(r.grads[0]) for r in e.rows[:5]]
    assert first == [-0.53, -0.53, -0.20, 0.20, 0.20]
    w0x0 = next(r for r in e.rows if r.inputs == ("w0", "x0"))
    assert w0x0.label == "*" and w0x0.patterns == ("mul swaps",)
    assert (_two(w0x0.grads[0]), _two(w0x0.grads[1])) == (-0.20, 0.39)
    assert _two(e.gradients["x0"]) == 0.39 and _two(e.gradients["w0"]) == -0.20
    assert [_two(r.output_value) for r in e.rows[:4]] == [0.73, 1.37, 0.37, -1.00]
    assert _two(e.rows[0].local[0]) == -0.53 and _two(e.rows[2].local[0]) == 0.37


def test_neuron_numbers_are_exactly_the_engines():
    out = neuron()
    e = cr.explain(out)
    inner = {w.node: w.name for w in cr.trace(out)}
    for node in inner:
        if not node.is_leaf:
            node.retain_grad()
    out.backward()
    by_name = {name: node for node, name in inner.items()}
    for row in e.rows:
        assert row.upstream == (1.0 if row.output == "f" else by_name[row.output].grad)
        for name, total in zip(row.inputs, row.totals):
            assert by_name[name].grad == total
    for name, g in e.gradients.items():
        assert by_name[name].grad == g


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_each_scalar_step_is_local_times_upstream(example):
    for row in cr.explain(EXAMPLES[example]()).rows:
        assert row.local is not None and len(row.local) == len(row.inputs)
        for local, g in zip(row.local, row.grads):
            assert g == pytest.approx(local * row.upstream, rel=1e-12, abs=1e-15)


def test_chain_rows_and_gradients():
    e = cr.explain(chain())
    assert [(r.label, r.output, r.inputs) for r in e.rows] == [
        ("*", "f", ("q", "z")),
        ("+", "q", ("x", "y")),
    ]
    assert e.rows[0].local == (-4.0, 3.0) and e.rows[0].grads == (-4.0, 3.0)
    assert e.rows[1].local == (1.0, 1.0) and e.rows[1].upstream == -4.0
    assert e.gradients == {"x": -4.0, "y": -4.0, "z": 3.0}


def test_patterns_circuit_shows_add_distributes_max_routes_mul_swaps():
    e = cr.explain(patterns())
    assert [r.label for r in e.rows] == ["*2", "+", "max", "*"]
    by_label = {r.label: r for r in e.rows}
    assert by_label["+"].patterns == ("add distributes",)
    assert by_label["+"].grads == (2.0, 2.0)
    assert by_label["max"].patterns == ("max routes",) and by_label["max"].grads == (2.0, 0.0)
    assert by_label["*"].patterns == ("mul swaps",) and by_label["*"].grads == (-8.0, 6.0)
    assert e.gradients == {"x": -8.0, "y": 6.0, "z": 2.0, "w": 0.0}


def test_staged_example_follows_the_notes_stages_and_adds_at_forks():
    e = cr.explain(staged())
    assert [r.output for r in e.rows] == [
        "f",
        "invden",
        "den",
        "xpysqr",
        "xpy",
        "sigx",
        "num",
        "sigy",
    ]
    assert [r.label for r in e.rows] == ["*", "1/x", "+", "**2", "+", "σ", "+", "σ"]
    forks = [r.output for r in e.rows if "fork adds" in r.patterns]
    assert forks == ["sigx", "num", "sigy"]
    num_row = e.rows[6]
    assert num_row.forked == (True, False)
    assert num_row.totals[0] == pytest.approx(
        sum(r.grads[r.inputs.index("x")] for r in e.rows[:7] if "x" in r.inputs)
    )
    x, y = (
        torch.tensor(3.0, dtype=torch.float64, requires_grad=True),
        torch.tensor(-4.0, dtype=torch.float64, requires_grad=True),
    )
    f = (x + torch.sigmoid(y)) / (torch.sigmoid(x) + (x + y) ** 2)
    f.backward()
    assert e.gradients["x"] == pytest.approx(x.grad.item(), rel=1e-12)
    assert e.gradients["y"] == pytest.approx(y.grad.item(), rel=1e-12)
    assert e.rows[0].output_value == pytest.approx(f.item(), rel=1e-12)


def test_a_value_used_twice_by_one_gate_is_a_fork():
    x = cr.Value(3.0, name="x")
    e = cr.explain(x * x)
    (row,) = e.rows
    assert row.inputs == ("x", "x") and row.forked == (False, True)
    assert row.totals == (3.0, 6.0) and "fork adds" in row.patterns
    assert e.gradients == {"x": 6.0}
    assert "dx += 3" in str(e)


def test_constants_get_no_gradient_and_leaves_stay_untouched():
    x = cr.Value(2.0, name="x")
    c = cr.Value(5.0, name="c", requires_grad=False)
    e = cr.explain(x * c)
    assert e.rows[0].grads == (5.0, None)
    assert e.gradients == {"x": 5.0}
    assert x.grad == 0.0


def test_table_is_readable_with_three_significant_digits():
    text = str(cr.explain(neuron()))
    lines = text.splitlines()
    assert lines[0].split() == [
        "#",
        "gate",
        "inputs",
        "output",
        "local",
        "upstream",
        "gradients",
        "pattern",
    ]
    assert "dt6 = -0.534" in lines[2] and "1/x" in lines[2]
    assert "dw0 = -0.197" in text and "dx0 = 0.393" in text
    assert "add distributes" in text and "mul swaps" in text
    assert len(lines) == 2 + 8


def test_digits_and_number_format():
    assert format_value(0.7310585786) == "0.731" and format_value(0.7310585786, 2) == "0.73"
    assert format_value(-0.0) == "0" and format_value(-4.0) == "-4"
    assert format_value(0.088) == "0.088" and format_value(0.116) == "0.116"
    assert format_value(-0.001) == "-0.001" and format_value(0.00132) == "0.00132"
    assert format_value(-6.5e-05) == "-6.5e-05" and format_value(1.23456e-7) == "1.23e-07"
    assert format_value(2e7) == "2e+07" and format_value(1234.5) == "1234"
    assert format_value(np.array([1.0, -2.5]), 1) == "[1 -2]"
    assert format_value(np.array([[0.088, 0.176], [0.104, 0.208]])) == (
        "[[0.088 0.176] [0.104 0.208]]"
    )
    assert format_value(np.array([3, 4])) == "[3 4]"
    assert format_value(np.zeros((5, 3), np.float32)) == "(5,3) float32"
    assert format_value(float("nan")) == "nan" and format_value(float("-inf")) == "-inf"
    assert shape_text((5,)) == "(5,)" and shape_text(()) == "()"
    assert "0.7311" in str(cr.explain(neuron(), digits=4))
    for bad in (0, 16, 2.5, True, "3"):
        with pytest.raises(ValueError, match="digits must be a whole number from 1 to 15"):
            cr.explain(neuron(), digits=bad)


def test_the_notes_2x2_example_in_three_significant_digits():
    W = cr.tensor([[0.1, 0.5], [-0.3, 0.8]], requires_grad=True, name="W")
    x = cr.tensor([0.2, 0.4], requires_grad=True, name="x")
    e = cr.explain(((W @ x) ** 2).sum())
    assert e.gradient_lines() == ["dW = [[0.088 0.176] [0.104 0.208]]", "dx = [-0.112 0.636]"]
    assert e.forward_lines()[-1].endswith("= 0.116")


def test_forward_lines_write_each_gate_as_an_operation():
    e = cr.explain(neuron())
    lines = e.forward_lines()
    assert lines[0] == "w0 = 2"
    assert "t1 = w0 * x0 = -2" in lines
    assert "t4 = dot *-1 = -1" in lines
    assert "t5 = exp(t4) = 0.368" in lines
    assert "f = 1/t6 = 0.731" in lines
    assert e.gradient_lines()[:2] == ["dw0 = -0.197", "dx0 = 0.393"]


def test_formula_reads_the_gate_label():
    x = cr.Value(1.0, name="x")
    c = cr.trace(abs(x) + cr.maximum(x, x * 2))
    forms = {w.name: formula(w, [i.name for i in c.inputs_of(w)]) for w in c.gates}
    assert sorted(forms.values()) == sorted(["|x|", "x *2", "max(x, t2)", "t1 + t3"])


def test_matmul_step_shows_the_rule_in_dimension_analysis_form():
    W = cr.tensor(np.ones((5, 10)), requires_grad=True, name="W")
    X = cr.tensor(np.ones((10, 3)), requires_grad=True, name="X")
    D = W @ X
    D.name = "D"
    e = cr.explain(D.sum())
    row = next(r for r in e.rows if r.label == "@")
    assert row.local is None
    assert row.rules == (
        "dW = dD @ X.T : (5,10) = (5,3) @ (3,10)",
        "dX = W.T @ dD : (10,3) = (10,5) @ (5,3)",
    )
    assert "dW = dD @ X.T : (5,10) = (5,3) @ (3,10)" in str(e)
    assert e.gradients["W"].shape == (5, 10)
    np.testing.assert_array_equal(e.gradients["W"], np.full((5, 10), 3.0))


def test_other_tensor_gates_show_the_shapes_of_their_gradients():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True, name="x")
    b = cr.tensor(np.ones(3), requires_grad=True, name="b")
    e = cr.explain((x + b).sum())
    expand = next(r for r in e.rows if r.gate == "broadcast_to")
    assert expand.rules == ("db = np.sum(dt1, axis=0) : (3,) <- (2,3)",)
    assert "fork adds" in expand.patterns
    np.testing.assert_array_equal(e.gradients["b"], [2.0, 2.0, 2.0])
    assert "(2,3) float64" in str(e)


def test_single_element_tensor_gates_get_local_gradients():
    x = cr.tensor(2.0, requires_grad=True, name="x")
    (row,) = cr.explain(x.exp()).rows
    assert row.local == (pytest.approx(np.exp(2.0)),)


def test_a_custom_gate_describes_itself():
    class Cube(Gate):
        symbol = "x³"
        pattern = "cube scales"

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return (grad * 3 * x * x,)

    x = cr.Value(2.0, name="x")
    (row,) = cr.explain(Cube.apply(x)).rows
    assert (row.gate, row.label, row.patterns) == ("cube", "x³", ("cube scales",))
    assert row.local == (12.0,)


def test_nothing_to_explain_for_a_constant():
    e = cr.explain(cr.Value(2.0, requires_grad=False) * 3)
    assert e.rows == [] and "nothing" in str(e)


def test_after_backward_explain_shows_what_it_showed_before():
    before = cr.explain(neuron())
    out = neuron()
    out.backward()
    after = cr.explain(out)
    assert str(after) == str(before) and after.gradients == before.gradients
    assert after.forward_lines() == before.forward_lines()
    # the leaves' .grad are those of the one backward, untouched by explain
    assert [round(w.grad, 3) for w in cr.trace(out).inputs][:2] == [-0.197, 0.393]


def test_explain_after_two_backwards_shows_one_sweeps_gradients():
    x = cr.Value(3.0, name="x")
    out = x * x
    out.backward(retain_graph=True)
    out.backward()
    assert x.grad == 12.0  # accumulated by two backward() calls
    assert cr.explain(out).gradients == {"x": 6.0}


def test_repr_counts_steps_with_a_correct_plural():
    assert repr(cr.explain(chain())) == "Explanation(2 steps, output f)"
    x = cr.Value(2.0, name="x")
    assert repr(cr.explain(x * 3)) == "Explanation(1 step, output t1)"


def test_jupyter_html_table_has_the_columns_and_aligned_numbers():
    e = cr.explain(chain())
    page = e._repr_html_()
    assert page.count("<tr>") == 3
    for header in ("local", "upstream", "gradients"):
        assert f">{header}</th>" in page
    assert "text-align:right'>dx = -4  dy = -4</td>" in page
    assert "dz = 3" in page and "<table" in page
    W = cr.tensor(np.ones((2, 3)), requires_grad=True, name="W")
    X = cr.tensor(np.ones((3, 2)), requires_grad=True, name="X")
    assert "dW = " in cr.explain((W @ X).sum())._repr_html_()
    empty = cr.explain(cr.Value(2.0, requires_grad=False) * 3)._repr_html_()
    assert "nothing" in empty


def test_explain_refuses_what_is_not_a_circuit():
    with pytest.raises(TypeError, match="Value or Tensor"):
        cr.explain(3.0)


def test_a_gate_that_returns_a_complex_gradient_is_refused_not_hidden():
    class Twisted(Gate):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return (grad * 1j,)

    x = cr.Value(2.0, name="x")
    with pytest.raises(cr.GateError, match="gate 'twisted'.*input 0 with complex values"):
        cr.explain(Twisted.apply(x))


def test_a_many_element_output_needs_an_upstream_gradient():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    y = x * 2
    with pytest.raises(RuntimeError, match="needs grad="):
        cr.explain(y)
    e = cr.explain(y, grad=np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(e.gradients["x"], [2.0, 0.0, -2.0])
    assert "*2" in str(e)


def test_a_leaf_output_is_its_own_gradient():
    x = cr.Value(3.0, name="x")
    e = cr.explain(x)
    assert e.rows == [] and e.gradients == {"x": 1.0}


def test_jupyter_shows_the_html_table_as_a_cells_last_expression():
    formatters = pytest.importorskip("IPython.core.formatters")
    bundle, _ = formatters.DisplayFormatter().format(cr.explain(chain()))
    assert "<table" in bundle["text/html"] and ">upstream</th>" in bundle["text/html"]
    assert bundle["text/plain"] == "Explanation(2 steps, output f)"
