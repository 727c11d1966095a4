"""The expression parser: what it builds, what it refuses (with the column), and fuzzing."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.expr import (
    ELEMENTWISE,
    MAX_LENGTH,
    Expression,
    ExpressionError,
    functions,
    parse,
    parse_value,
)


def _values(**kw):
    return {k: cr.Value(v, name=k) for k, v in kw.items()}


def test_chain_example_builds_and_backprops():
    e = parse("(x + y) * z")
    assert isinstance(e, Expression)
    assert e.text == "(x + y) * z"
    assert e.names == ("x", "y", "z")
    vals = _values(x=-2, y=5, z=-4)
    f = e.build(vals)
    assert f.data == -12.0
    f.backward()
    assert (vals["x"].grad, vals["y"].grad, vals["z"].grad) == (-4.0, -4.0, 3.0)


def test_names_in_order_of_first_appearance_once_each():
    assert parse("b * a + exp(c) - a / b").names == ("b", "a", "c")
    assert parse("3 + 4").names == ()


def test_gates_used_are_the_notes_gates():
    x = cr.Value(2.0, name="x")
    out = parse("1 / (1 + exp(-x)) * 2").build({"x": x})
    names = [w.gate.name for w in cr.trace(out).gates]
    assert names == ["neg", "exp", "translate", "reciprocal", "scale"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x ** 2 + 2 ** x", 3.0**2 + 2.0**3),
        ("sqrt(x) * log(x) - tanh(x)", math.sqrt(3) * math.log(3) - math.tanh(3)),
        ("relu(-x) + abs(-x) + sigmoid(x)", 3 + 1 / (1 + math.exp(-3))),
        ("max(x, 1, 7) - min(x, -1)", 7 + 1),
        ("-x + +x - 2 * x / 4", -1.5),
        ("x ** x", 27.0),
    ],
)
def test_every_operation_matches_math(text, expected):
    assert parse(text).build({"x": cr.Value(3.0)}).data == pytest.approx(expected)


def test_build_works_on_tensors_with_the_same_gradients_as_values():
    e = parse("x * y + max(x, y) - sigmoid(x) / y")
    xs, ys = [0.5, -1.0, 2.0], [1.5, 2.0, -0.5]
    tx = cr.tensor(xs, requires_grad=True)
    ty = cr.tensor(ys, requires_grad=True)
    e.build({"x": tx, "y": ty}).sum().backward()
    for i in range(3):
        vx, vy = cr.Value(xs[i]), cr.Value(ys[i])
        e.build({"x": vx, "y": vy}).backward()
        assert tx.grad[i] == pytest.approx(vx.grad)
        assert ty.grad[i] == pytest.approx(vy.grad)


def test_a_constant_expression_still_gives_a_node():
    out = parse("2 + 3").build({})
    assert isinstance(out, cr.Value) and out.data == 5.0 and not out.requires_grad
    out = parse("2 * 3").build({"x": cr.tensor([1.0])})
    assert isinstance(out, cr.Tensor)


def test_numbers_in_values_are_constants():
    assert parse("x + y").build({"x": cr.Value(1.0), "y": 2}).data == 3.0
    with pytest.raises(ExpressionError, match="must be a Value, Tensor or number"):
        parse("x + y").build({"x": cr.Value(1.0), "y": "2"})


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("x.real", 1, "attribute access"),
        ("x + y.__class__", 5, "attribute access"),
        ("open(x)", 1, "unknown function 'open'"),
        ("x + __import__('os')", 5, "unknown function '__import__'"),
        ("(x).exp()", 1, "can be called"),
        ("[a for a in x]", 1, "comprehensions"),
        ("sum(a for a in x)", 4, "comprehensions"),
        ("sum(x, axis=1.5)", 13, "axis= must be a whole number"),
        ("sum(x, keepdims=1)", 1, "sum() takes axis="),
        ("exp(x, axis=0)", 1, "exp() takes no keyword arguments"),
        ("sum(x, y)", 1, "exactly 1 argument"),
        ("max()", 1, "needs an argument"),
        ("x + [1, [2]]", 5, "rectangular"),
        ("x + [[1, 2], [3]]", 5, "rectangular"),
        ("x + []", 5, "rectangular"),
        ("x + [1, 'a']", 5, "only numbers"),
        ("x + [1e999]", 5, "too large"),
        ("exp(a for a in x)", 4, "comprehensions"),
        ("{a: 1 for a in x}", 1, "comprehensions"),
        ("lambda: 1", 1, "lambdas"),
        ("x[0]", 1, "subscripts"),
        ("exp(x, out=1)", 1, "keyword"),
        ("__builtins__", 1, "name '__builtins__' is not allowed"),
        ("x + __x", 5, "name '__x' is not allowed"),
        ("exp + 1", 1, "'exp' is a function"),
        ("x // 2", 3, "operator //"),
        ("x % 2", 3, "operator %"),
        ("(x) // y", 5, "operator //"),
        ("~x", 1, "operator ~"),
        ("x < y", 1, "comparisons"),
        ("x if y else z", 1, "conditional"),
        ("x and y", 1, "'and'/'or'"),
        ("(x, y)", 1, "tuples"),
        ("'abc'", 1, "only numbers"),
        ("True + x", 1, "only numbers"),
        ("2j * x", 1, "only numbers"),
        ("(y := 2)", 2, "assignment"),
        ("exp(*x)", 5, "starred"),
        ("exp(x, y)", 1, "exactly 1 argument"),
        ("(exp)(x)(y)", 1, "can be called"),
        ("1e999 * x", 1, "too large"),
        ("x +* y", 4, "syntax error"),
        ("   (x + 1", 4, "syntax error"),
        ("", 1, "empty"),
        ("x\n+ y", 2, "one line"),
    ],
)
def test_refused_with_a_one_line_message_and_the_column(text, position, words):
    with pytest.raises(ExpressionError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert words in str(err)
    assert err.position == position
    assert str(err).startswith(f"column {position}: ")
    assert "\n" not in str(err)


def test_position_counts_characters_not_bytes():
    with pytest.raises(ExpressionError) as info:
        parse("αβ + γ.real")
    assert info.value.position == 6


def test_very_long_and_very_deep_input_is_refused_gracefully():
    with pytest.raises(ExpressionError, match="longer than"):
        parse("x + " * MAX_LENGTH + "x")
    with pytest.raises(ExpressionError, match="nested too deeply|syntax error"):
        parse("(" * 400 + "x" + ")" * 400)
    with pytest.raises(ExpressionError, match="nested too deeply|syntax error"):
        parse("exp(" * 300 + "x" + ")" * 300)


def test_deep_chains_within_the_length_limit_parse_and_build_without_recursion():
    x = cr.Value(2.0)
    out = parse("-" * (MAX_LENGTH - 1) + "x").build({"x": x})
    out.backward()
    assert out.data == -2.0 and x.grad == -1.0
    y = cr.Value(1.0)
    out = parse("y+" * (MAX_LENGTH // 2 - 1) + "y").build({"y": y})
    out.backward()
    assert out.data == MAX_LENGTH // 2 and y.grad == MAX_LENGTH // 2


def test_a_long_flat_expression_within_the_limits_builds():
    text = "+".join(["x"] * 300)
    x = cr.Value(1.0)
    out = parse(text).build({"x": x})
    out.backward()
    assert out.data == 300.0 and x.grad == 300.0


def test_build_errors_name_the_operation_and_column():
    with pytest.raises(ExpressionError) as info:
        parse("x + y").build({"x": cr.Value(1.0)})
    assert info.value.position == 5 and "no value given for 'y'" in str(info.value)
    with pytest.raises(ExpressionError) as info:
        parse("x / (x - 1)").build({"x": cr.Value(1.0)})
    assert info.value.position == 3 and "division by zero" in str(info.value)
    with pytest.raises(ExpressionError) as info:
        parse("2 * log(x)").build({"x": cr.Value(-1.0)})
    assert info.value.position == 5 and "log" in str(info.value)
    with pytest.raises(ExpressionError, match="not a real number|too large"):
        parse("(-8) ** 0.5 + x").build({"x": cr.Value(1.0)})
    with pytest.raises(ExpressionError):
        parse("10 ** 400 + x").build({"x": cr.Value(1.0)})


def test_the_whitelist_is_the_documented_one():
    assert set(functions()) >= {
        "exp",
        "log",
        "tanh",
        "sigmoid",
        "relu",
        "max",
        "min",
        "abs",
        "sqrt",
        "sum",
        "mean",
    }


def test_a_function_added_to_the_registry_is_known_at_once(monkeypatch):
    monkeypatch.setitem(ELEMENTWISE, "cube", lambda x: x * x * x)
    assert "cube" in functions()
    assert parse("cube(x) + 1").build({"x": cr.Value(2.0)}).data == 9.0


def test_the_notes_2x2_example_with_matmul_sum_and_list_values():
    e = parse("sum((W @ x)**2)")
    assert e.names == ("W", "x") and e.needs_arrays and not parse("x * y").needs_arrays
    W = cr.tensor(parse_value("[[0.1,0.5],[-0.3,0.8]]"), requires_grad=True)
    x = cr.tensor(parse_value("[0.2, 0.4]"), requires_grad=True)
    f = e.build({"W": W, "x": x})
    f.backward()
    assert f.item() == pytest.approx(0.116)
    np.testing.assert_allclose(W.grad, [[0.088, 0.176], [0.104, 0.208]])
    np.testing.assert_allclose(x.grad, [-0.112, 0.636])


def test_reductions_take_an_axis_and_max_min_of_one_argument_reduce():
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = parse("max(x, axis=0) + mean(x, axis=-1) + min(x) + max(x, 2) + x @ [1, 2]")
    np.testing.assert_allclose(out.build({"x": x}).data, [[12.5, 21.5], [13.5, 23.5]])
    assert parse("sum(x)").needs_arrays and not parse("max(x, y)").needs_arrays


def test_array_operations_on_scalars_say_to_give_arrays():
    with pytest.raises(ExpressionError, match=r"sum\(\).*give array values"):
        parse("sum(x)").build({"x": cr.Value(1.0)})
    with pytest.raises(ExpressionError, match="operator @.*give array values"):
        parse("x @ y").build({"x": cr.Value(1.0), "y": cr.Value(2.0)})
    with pytest.raises(ExpressionError, match="operator @.*shape|operator @.*match|operator @"):
        parse("x @ y").build({"x": cr.tensor([1.0, 2.0]), "y": cr.tensor([1.0, 2.0, 3.0])})


def test_parse_value_reads_numbers_and_nested_lists_only():
    assert parse_value("-2") == -2.0 and parse_value(" 1e-3 ") == 0.001
    value = parse_value("[[1, -2.5], [3, 4]]")
    assert value.dtype == np.float64 and value.tolist() == [[1.0, -2.5], [3.0, 4.0]]
    for bad, words in [
        ("abc", "not a number"),
        ("__import__('os')", "not a number"),
        ("[1, [2]]", "rectangular"),
        ("[1, x]", "only numbers"),
        ("1e999", "not a number"),
        ("[" * 40 + "1" + "]" * 40, "nested too deeply"),
        ("1" * (MAX_LENGTH + 1), "longer than"),
    ]:
        with pytest.raises(ExpressionError, match=words):
            parse_value(bad)


@settings(max_examples=400)
@given(st.text(max_size=60))
def test_fuzz_any_text_parses_or_raises_expression_error(text):
    try:
        parse(text)
    except ExpressionError as err:
        assert err.position >= 1 and "\n" not in str(err)


_ALPHABET = "xyz()+-*/.,[]:= 0123456789eaxpolgsqrtminabs_'\"@%<>!~&|^{}\\#λ"


@settings(max_examples=400)
@given(st.text(alphabet=_ALPHABET, max_size=40))
def test_fuzz_expression_like_text_parses_and_builds_or_raises_expression_error(text):
    try:
        expression = parse(text)
    except ExpressionError:
        return
    values = {n: cr.Value(0.5) for n in expression.names}
    try:
        out = expression.build(values)
    except ExpressionError:
        return
    assert isinstance(out, cr.Value)
    assert np.isfinite(out.data) or np.isnan(out.data) or np.isinf(out.data)


@pytest.mark.parametrize(("text", "column"), [("x * y +", 8), ("  (x + y) *", 12), ("x -", 4)])
def test_text_that_ends_too_early_points_past_its_end(text, column):
    with pytest.raises(ExpressionError, match="syntax error") as caught:
        parse(text)
    assert caught.value.position == column
