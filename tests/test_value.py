"""Value, the scalar front end: operators with numbers on either side, the unary gates as methods
and module functions, comparisons, repr, domain errors naming the gate, tie rules, and agreement
with PyTorch (float64 0-d tensors) on random compositions of every scalar gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import chainrule as cr


def grads_of(fn, *data: float) -> tuple:
    """The value of ``fn`` at ``data`` and the gradient on each input."""
    leaves = [cr.Value(d) for d in data]
    out = fn(*leaves)
    out.backward()
    return out.data, tuple(v.grad for v in leaves)


# --- construction, data and repr -----------------------------------------------------------------
def test_data_and_grad_are_python_floats():
    v = cr.Value(3)
    assert type(v.data) is float and v.data == 3.0
    assert type(v.grad) is float and v.grad == 0.0
    out = v * 2
    out.backward()
    assert type(v.grad) is float and type(out.data) is float


@pytest.mark.parametrize("number", [np.float32(1.5), np.float64(1.5), np.int64(1), True])
def test_numpy_scalars_and_bools_are_numbers(number):
    assert cr.Value(number).data == float(number)
    assert (cr.Value(1.0) + number).data == 1.0 + float(number)


@pytest.mark.parametrize("bad", ["1.0", 1j, np.complex128(1), [1.0], None])
def test_non_real_data_is_refused(bad):
    with pytest.raises(TypeError, match="Value needs a real number"):
        cr.Value(bad)


def test_values_refuse_to_combine_with_non_numbers():
    with pytest.raises(TypeError):
        cr.Value(1.0) + "a"
    with pytest.raises(TypeError):
        [1.0] * cr.Value(2.0)


def test_repr_shows_name_data_and_grad():
    v = cr.Value(-2.0, name="x")
    assert repr(v) == "Value('x', data=-2, grad=0)"
    out = v * 3
    assert repr(out) == "Value(data=-6, grad=None)"
    out.backward()
    assert repr(v) == "Value('x', data=-2, grad=3)"


def test_values_are_hashable_by_identity():
    a, b = cr.Value(1.0), cr.Value(1.0)
    assert a == b  # comparisons compare data...
    assert len({a, b}) == 2  # ...but each Value is its own node
    assert float(a) == 1.0


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda a, b: a < b, True),
        (lambda a, b: a <= b, True),
        (lambda a, b: a > b, False),
        (lambda a, b: a >= b, False),
        (lambda a, b: a == b, False),
        (lambda a, b: a != b, True),
        (lambda a, b: a < 2.5, True),
        (lambda a, b: 2.5 < b, True),
        (lambda a, b: a == 1.0, True),
    ],
)
def test_comparisons_are_plain_bools(expr, expected):
    result = expr(cr.Value(1.0), cr.Value(3.0))
    assert type(result) is bool and result is expected


# --- operators with numbers on either side -------------------------------------------------------
OPERATORS = [
    ("v + 2", lambda v: v + 2, lambda x: x + 2, 1.0),
    ("2 + v", lambda v: 2 + v, lambda x: 2 + x, 1.0),
    ("v - 2", lambda v: v - 2, lambda x: x - 2, 1.0),
    ("2 - v", lambda v: 2 - v, lambda x: 2 - x, -1.0),
    ("v * 3", lambda v: v * 3, lambda x: x * 3, 3.0),
    ("3 * v", lambda v: 3 * v, lambda x: 3 * x, 3.0),
    ("v / 4", lambda v: v / 4, lambda x: x / 4, 0.25),
    ("4 / v", lambda v: 4 / v, lambda x: 4 / x, -4 / 1.5**2),
    ("1 / v", lambda v: 1 / v, lambda x: 1 / x, -1 / 1.5**2),
    ("v ** 3", lambda v: v**3, lambda x: x**3, 3 * 1.5**2),
    ("2 ** v", lambda v: 2**v, lambda x: 2**x, 2**1.5 * math.log(2)),
    ("-v", lambda v: -v, lambda x: -x, -1.0),
    ("+v", lambda v: +v, lambda x: +x, 1.0),
    ("abs(v)", lambda v: abs(v), lambda x: abs(x), 1.0),
]


@pytest.mark.parametrize(
    ("label", "expr", "plain", "slope"), OPERATORS, ids=[o[0] for o in OPERATORS]
)
def test_operators_mix_with_numbers_on_either_side(label, expr, plain, slope):
    value, (grad,) = grads_of(expr, 1.5)
    assert type(value) is float and type(grad) is float
    assert math.isclose(value, plain(1.5), rel_tol=1e-15)
    assert math.isclose(grad, slope, rel_tol=1e-15)


def test_operators_name_their_gates():
    x = cr.Value(1.5)
    names = {
        "add": x + x,
        "sub": x - x,
        "mul": x * x,
        "div": x / x,
        "pow": x**2,
        "neg": -x,
        "translate": x + 1,
        "scale": 2 * x,
        "reciprocal": 1 / x,
    }
    for name, node in names.items():
        assert node.gate.name == name


def test_division_by_a_constant_keeps_the_constant_as_a_wire():
    x = cr.Value(3.0)
    out = x / 4
    assert out.gate.name == "div"
    assert not out.inputs[1].requires_grad and out.inputs[1].data == 4.0


def test_in_place_operators_rebind_to_a_new_node():
    x = cr.Value(1.0)
    c = x
    c += 1
    c *= 3
    assert c is not x and x.data == 1.0 and c.data == 6.0
    c.backward()
    assert x.grad == 3.0


# --- unary gates as methods and module functions -------------------------------------------------
UNARY = [
    ("exp", math.exp, math.exp),
    ("log", math.log, lambda x: 1 / x),
    ("sqrt", math.sqrt, lambda x: 0.5 / math.sqrt(x)),
    ("tanh", math.tanh, lambda x: 1 - math.tanh(x) ** 2),
    ("sigmoid", lambda x: 1 / (1 + math.exp(-x)), lambda x: math.exp(-x) / (1 + math.exp(-x)) ** 2),
    ("relu", lambda x: max(x, 0.0), lambda x: float(x > 0)),
    ("abs", abs, lambda x: math.copysign(1.0, x)),
]


@pytest.mark.parametrize(("name", "fn", "slope"), UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("x", [0.7, 2.5])
def test_unary_gates_as_methods_and_functions(name, fn, slope, x):
    for apply in (lambda v: getattr(v, name)(), lambda v: getattr(cr, name)(v)):
        value, (grad,) = grads_of(apply, x)
        assert math.isclose(value, fn(x), rel_tol=1e-14)
        assert math.isclose(grad, slope(x), rel_tol=1e-14)


def test_module_functions_also_take_plain_numbers():
    assert cr.exp(0.0) == 1.0 and cr.maximum(1.0, 2.0) == 2.0 and cr.sigmoid(0.0) == 0.5


def test_sigmoid_is_one_gate_and_stable_far_from_zero():
    x = cr.Value(-800.0)
    s = x.sigmoid()
    assert s.gate.name == "sigmoid" and s.inputs == (x,)
    s.backward()
    assert s.data == 0.0 and x.grad == 0.0
    assert cr.Value(800.0).sigmoid().data == 1.0


# --- errors naming the gate ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (lambda v0, v1: v0.log(), r"gate 'log': input must be positive, got 0\.0"),
        (lambda v0, v1: (-v1).log(), r"gate 'log': input must be positive, got -1\.0"),
        (lambda v0, v1: (-v1).sqrt(), r"gate 'sqrt': input must be non-negative, got -1\.0"),
        (lambda v0, v1: 1 / v0, r"gate 'reciprocal': 1/x of x = 0\.0"),
        (lambda v0, v1: v1 / v0, r"gate 'div': division by zero"),
        (lambda v0, v1: v1 / 0, r"gate 'div': division by zero"),
        (lambda v0, v1: (-v1) ** 0.5, r"gate 'pow': -1\.0 \*\* 0\.5 is not a real number"),
        (lambda v0, v1: v0**-1, r"gate 'pow': 0\.0 \*\* -1\.0 divides by zero"),
        (lambda v0, v1: (v1 * 1000).exp(), r"gate 'exp': result overflows"),
    ],
)
def test_domain_errors_name_the_gate(expr, message):
    v0, v1 = cr.Value(0.0), cr.Value(1.0)
    with pytest.raises(cr.GateError, match=message):
        expr(v0, v1)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (lambda v0, v1: v0.sqrt(), r"gate 'sqrt': the gradient of sqrt at 0 is infinite"),
        (lambda v0, v1: v0 ** (v1 * 0.5), r"gate 'pow': the gradient of x \*\* 0\.5 at x = 0"),
        (lambda v0, v1: (-v1 - 1) ** (v1 + 1), r"gate 'pow': .*exponent needs a base >= 0"),
    ],
)
def test_infinite_or_undefined_gradients_name_the_gate(expr, message):
    v0, v1 = cr.Value(0.0), cr.Value(1.0)
    out = expr(v0, v1)
    with pytest.raises(cr.GateError, match=message):
        out.backward()
    assert v0.grad == 0.0 and v1.grad == 0.0  # a failed backward leaves every .grad untouched


def test_value_to_a_value_power_gives_real_errors_and_gradients():
    with pytest.raises(cr.GateError, match=r"gate 'pow': -0\.5 \*\* 0\.5 is not a real number"):
        cr.Value(-0.5) ** cr.Value(0.5)
    x, y = cr.Value(2.0), cr.Value(3.0)
    (x**y).backward()
    assert x.grad == 12.0 and y.grad == pytest.approx(8 * math.log(2.0), rel=1e-15)


def test_domain_errors_are_value_errors_too():
    with pytest.raises(ValueError):
        cr.Value(-1.0).log()


# --- tie rules -----------------------------------------------------------------------------------
def test_max_and_min_split_the_gradient_equally_on_a_tie():
    a, b = cr.Value(2.0), cr.Value(2.0)
    cr.maximum(a, b).backward()
    assert (a.grad, b.grad) == (0.5, 0.5)
    c, d = cr.Value(-1.0), cr.Value(-1.0)
    cr.minimum(c, d).backward()
    assert (c.grad, d.grad) == (0.5, 0.5)


def test_max_of_a_value_with_itself_passes_the_whole_gradient():
    a = cr.Value(2.0)
    cr.maximum(a, a).backward()
    assert a.grad == 1.0


def test_relu_and_abs_have_zero_gradient_at_zero():
    assert grads_of(lambda v: v.relu(), 0.0) == (0.0, (0.0,))
    assert grads_of(lambda v: abs(v), 0.0) == (0.0, (0.0,))
    assert grads_of(lambda v: abs(v), -2.0) == (2.0, (-1.0,))


def test_tie_rules_agree_with_pytorch():
    for fn in (torch.maximum, torch.minimum):
        a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        fn(a, b).backward()
        assert (a.grad.item(), b.grad.item()) == (0.5, 0.5)
    z = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (torch.relu(z) + torch.abs(z)).backward()
    assert z.grad.item() == 0.0


# --- PyTorch agreement on random compositions of every scalar gate -------------------------------
def _positive(v, lib):
    return abs(v) + 0.5  # keeps log, sqrt, 1/x and x**y in their domains


UNARY_OPS = {
    "exp": (lambda v: v.exp(), torch.exp),
    "log": (lambda v: _positive(v, cr).log(), lambda t: torch.log(_positive(t, torch))),
    "sqrt": (lambda v: _positive(v, cr).sqrt(), lambda t: torch.sqrt(_positive(t, torch))),
    "tanh": (lambda v: v.tanh(), torch.tanh),
    "sigmoid": (lambda v: v.sigmoid(), torch.sigmoid),
    "relu": (lambda v: v.relu(), torch.relu),
    "abs": (abs, torch.abs),
    "neg": (lambda v: -v, lambda t: -t),
    "translate": (lambda v: v + 1.5, lambda t: t + 1.5),
    "rsub": (lambda v: 0.5 - v, lambda t: 0.5 - t),
    "scale": (lambda v: -2.5 * v, lambda t: -2.5 * t),
    "divide_by_constant": (lambda v: v / 3.0, lambda t: t / 3.0),
    "reciprocal": (lambda v: 1 / _positive(v, cr), lambda t: 1 / _positive(t, torch)),
    "square": (lambda v: v**2, lambda t: t**2),
    "cube": (lambda v: v**3, lambda t: t**3),
    "pow_fraction": (lambda v: _positive(v, cr) ** -1.5, lambda t: _positive(t, torch) ** -1.5),
    "exp2": (lambda v: 2.0**v, lambda t: 2.0**t),
}
BINARY_OPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / _positive(b, cr), lambda a, b: a / _positive(b, torch)),
    "max": (cr.maximum, torch.maximum),
    "min": (cr.minimum, torch.minimum),
    "pow": (lambda a, b: _positive(a, cr) ** b, lambda a, b: _positive(a, torch) ** b),
}

trees = st.recursive(
    st.integers(0, 2),
    lambda children: st.one_of(
        st.tuples(st.sampled_from(sorted(UNARY_OPS)), children),
        st.tuples(st.sampled_from(sorted(BINARY_OPS)), children, children),
    ),
    max_leaves=6,
)
leaf_values = st.sampled_from((0.0, 1.0, -1.0, 0.5)) | st.floats(-2.0, 2.0)


def evaluate(tree, leaves, side: int):
    """Build ``tree`` over ``leaves``; side 0 uses chainrule's gates, side 1 PyTorch's."""
    if isinstance(tree, int):
        return leaves[tree]
    if len(tree) == 2:
        return UNARY_OPS[tree[0]][side](evaluate(tree[1], leaves, side))
    left, right = evaluate(tree[1], leaves, side), evaluate(tree[2], leaves, side)
    return BINARY_OPS[tree[0]][side](left, right)


@settings(max_examples=200)
@given(tree=trees, data=st.lists(leaf_values, min_size=3, max_size=3))
def test_random_compositions_agree_with_pytorch(tree, data):
    leaves = [cr.Value(d) for d in data]
    try:
        out = evaluate(tree, leaves, 0)
    except cr.GateError:
        assume(False)  # an overflow (exp of something large): nothing to compare
    assume(isinstance(out, cr.Value) and out.requires_grad and abs(out.data) < 1e12)
    tensors = [torch.tensor(d, dtype=torch.float64, requires_grad=True) for d in data]
    expected = evaluate(tree, tensors, 1)
    out.backward()
    expected.backward()
    assert math.isclose(out.data, expected.item(), rel_tol=1e-9, abs_tol=1e-12)
    for leaf, t in zip(leaves, tensors):
        g = 0.0 if t.grad is None else t.grad.item()
        assume(math.isfinite(g))
        assert math.isclose(leaf.grad, g, rel_tol=1e-8, abs_tol=1e-10), (tree, data)


def test_every_scalar_gate_is_covered_by_the_random_compositions():
    x, y = cr.Value(0.3), cr.Value(-0.7)
    made = set()
    for fn, _ in UNARY_OPS.values():
        made |= {w.gate.name for w in cr.trace(fn(x)).gates}
    for fn, _ in BINARY_OPS.values():
        made |= {w.gate.name for w in cr.trace(fn(x, y)).gates}
    assert made == {
        "exp",
        "log",
        "sqrt",
        "tanh",
        "sigmoid",
        "relu",
        "abs",
        "neg",
        "translate",
        "scale",
        "div",
        "reciprocal",
        "pow",
        "add",
        "sub",
        "mul",
        "maximum",
        "minimum",
    }
