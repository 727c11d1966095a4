"""cr.stage: staged forward/backward source generated from a trace, compiled once.

Staged code runs each gate's own forward code and its recorded backward, so its results equal
the eager engine's: every gate (parametrised over all Gate subclasses, so a new gate is covered)
and a user's gate are compared to 1e-15 relative in float64 and 1e-6 in float32 on hypothesis
inputs with broadcasting, forks and edge values, with and without buffers, on a second call with
new inputs too (buffers are reused); the notes' examples reproduce and the staged example has the
notes' stage structure.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.gate import Gate
from chainrule.stage import StageError

TIES = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
REAL = st.one_of(TIES, st.floats(-3, 3, allow_nan=False))
POSITIVE = st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.2, 4))


def arrays(shape, elements=REAL):
    return hnp.arrays(np.float64, shape, elements=elements)


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
PAIRS = hnp.mutually_broadcastable_shapes(
    num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3
).map(lambda b: b.input_shapes)


def _weights(shape: tuple) -> np.ndarray:
    return np.linspace(-1.5, 2.0, int(np.prod(shape))).reshape(shape)


def check(f, *inputs, wrt=None, rtol=1e-15):
    """Stage ``sum(f(*inputs) * w)`` and compare value and gradients with the eager engine, with
    and without buffers, then again at new inputs (reused buffers)."""
    out = f(*[cr.tensor(a) for a in inputs]).data
    weights = _weights(np.shape(out)).astype(out.dtype)

    def loss(*args):
        return (f(*args) * weights).sum()

    wrt = tuple(range(len(inputs))) if wrt is None else wrt
    inputs = tuple(np.asarray(a) for a in inputs)
    eager = cr.value_and_grad(loss, wrt)
    for buffers in (True, False):
        staged = cr.stage(loss, *inputs, wrt=wrt, buffers=buffers)
        moved = tuple(
            (a * 0.5 + 0.25).astype(a.dtype) if a.dtype.kind == "f" else a for a in inputs
        )
        for point in (inputs, moved):
            value, grads = staged(*point)
            expected_value, expected_grads = eager(*point)
            np.testing.assert_allclose(value, expected_value, rtol=rtol, atol=0)
            for g, e in zip(grads, expected_grads):
                assert np.shape(g) == np.shape(e) and np.asarray(g).dtype == np.asarray(e).dtype
                np.testing.assert_allclose(g, e, rtol=rtol, atol=0)
    return staged


# --- every gate ---------------------------------------------------------------------------------
UNARY = {
    "exp": cr.exp,
    "tanh": cr.tanh,
    "sigmoid": cr.sigmoid,
    "relu": cr.relu,
    "abs": cr.abs,
    "neg": lambda x: -x,
    "translate": lambda x: x + 2.5,
    "translate_neg": lambda x: x - 1.5,
    "rsub": lambda x: 2.0 - x,
    "scale": lambda x: 3.0 * x,
    "cube": lambda x: x**3,
    "square": lambda x: x**2,
    "pow0": lambda x: x**0,
    "clip": lambda x: cr.clip(x, -1.0, 1.0),
    "clip_lo": lambda x: cr.clip(x, lo=0.0),
    "clip_hi": lambda x: cr.clip(x, hi=0.5),
    "div_const": lambda x: x / 3.0,
}
POSITIVE_UNARY = {
    "log": cr.log,
    "sqrt": cr.sqrt,
    "reciprocal": lambda x: 1.0 / x,
    "rdiv_const": lambda x: 2.0 / x,
    "sqrt_pow": lambda x: x**0.5,
}
BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "maximum": cr.maximum,
    "minimum": cr.minimum,
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_gates(name, data):
    check(UNARY[name], data.draw(arrays(data.draw(SHAPES))))


@pytest.mark.parametrize("name", sorted(POSITIVE_UNARY))
@given(data=st.data())
def test_unary_gates_on_positive_inputs(name, data):
    check(POSITIVE_UNARY[name], data.draw(arrays(data.draw(SHAPES), POSITIVE)))


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_gates_broadcasting(name, data):
    sx, sy = data.draw(PAIRS)
    check(BINARY[name], data.draw(arrays(sx)), data.draw(arrays(sy)))


@given(data=st.data())
def test_div_and_pow_broadcasting(data):
    sx, sy = data.draw(PAIRS)
    x, y = data.draw(arrays(sx)), data.draw(arrays(sy, POSITIVE))
    check(lambda a, b: a / b, x, y)
    check(lambda a, b: b**a, x, y)


@pytest.mark.parametrize("buffers", [True, False])
def test_a_folded_gradient_keeps_its_shape(buffers):
    x, c = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 3.0])
    for f in (
        lambda a: (a * c).sum(),
        lambda a: cr.where(c > 0, a, 0.0).sum(),
        lambda a: cr.where(c > 0, 2.0, a).sum(),
    ):
        value, grad = cr.stage(f, x, buffers=buffers)(x)
        expected_value, expected_grad = cr.value_and_grad(f)(x)
        assert value == expected_value and grad.shape == (2, 3)
        np.testing.assert_array_equal(grad, expected_grad)


@given(data=st.data())
def test_where_with_a_constant_condition(data):
    sx, sy = data.draw(PAIRS)
    x, y = data.draw(arrays(sx)), data.draw(arrays(sy))
    cond = np.arange(np.prod(np.broadcast_shapes(sx, sy))).reshape(np.broadcast_shapes(sx, sy)) % 2
    check(lambda a, b: cr.where(cond.astype(bool), a, b), x, y)


REDUCTIONS = {
    "sum": cr.sum,
    "mean": cr.mean,
    "max": cr.max,
    "min": cr.min,
    "logsumexp": cr.logsumexp,
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), data=st.data())
def test_reductions(name, shape, data):
    x = data.draw(arrays(shape))
    axis = data.draw(st.sampled_from([None, 0, -1, tuple(range(len(shape)))]))
    keepdims = data.draw(st.booleans())
    check(lambda t: REDUCTIONS[name](t, axis=axis, keepdims=keepdims), x)


@settings(max_examples=6)
@given(x=arrays((2, 3, 4)), y=arrays((2, 3, 4)))
def test_shape_gates(x, y):
    check(lambda t: t.reshape(-1), x)
    check(lambda t: t.reshape(4, 6).T, x)
    check(lambda t: cr.transpose(t, (2, 0, 1)), x)
    check(lambda t: t[1:, ::2, 0], x)
    check(lambda t: t[0], x)
    check(lambda t: t[..., None, 1], x)
    check(lambda t: t[[0, 0, 1]], x)
    check(lambda t: t[:, [2, 0, 2]], x)
    check(lambda t: t[x > 0], x)
    check(lambda a, b: cr.concatenate([a, b, a], axis=1), x, y)
    check(lambda a, b: cr.stack([a, b], axis=-1), x, y)
    check(lambda t: cr.split(t, 2, axis=2)[1], x)
    check(lambda t: cr.expand_dims(t, 0).squeeze(0), x)
    check(lambda t: cr.broadcast_to(t[:, :1], (5, 2, 3, 4)), x)


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((3, 4), (4, 2)),
        ((4,), (4,)),
        ((3, 4), (4,)),
        ((4,), (4, 2)),
        ((2, 3, 4), (4, 2)),
        ((2, 1, 3, 4), (3, 4, 2)),
    ],
)
@given(data=st.data())
def test_matmul(sa, sb, data):
    check(lambda a, b: a @ b, data.draw(arrays(sa)), data.draw(arrays(sb)))


@pytest.mark.parametrize("fn", [cr.softmax, cr.log_softmax])
@given(x=arrays((3, 4)), axis=st.sampled_from([0, -1]))
def test_softmax(fn, x, axis):
    check(lambda t: fn(t, axis=axis), x)


@given(data=st.data())
def test_linear_combination(data):
    w0, w1, x0, x1, b = (data.draw(arrays((2, 3))) for _ in range(5))
    check(lambda a, c, d, e, f: cr.linear_combination([a, c], [d, e], f), w0, w1, x0, x1, b)


@given(x=arrays((3,)), y=arrays((2, 3)))
def test_fan_out_accumulates(x, y):
    check(lambda a: a * a, x)
    check(lambda a, b: a + a * b + cr.sigmoid(a) * a - b * b, x, y)
    check(lambda a, b: (cr.tanh(a * b) @ a)[:, None] * b + (a - b).sum(), x, y, wrt=(0, 1))


# --- the notes' examples ------------------------------------------------------------------------
def notes_staged(x, y):
    sigy = cr.sigmoid(y)
    num = x + sigy
    sigx = cr.sigmoid(x)
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    return f


def one_line(x, y):
    return (x + cr.sigmoid(y)) / (cr.sigmoid(x) + (x + y) ** 2)


def _forward_and_backward(source: str) -> tuple[list[str], list[str]]:
    body = source.split("# forward pass\n")[1]
    forward, backward = body.split("# backward pass")
    stage = re.compile(r"^\s+(\w+) (\+?=) .*# \((\d+)\)")
    return (
        [m.group(1) for m in map(stage.match, forward.splitlines()) if m],
        [m.groups() for m in map(stage.match, backward.splitlines()) if m],
    )


@pytest.mark.parametrize("f", [notes_staged, one_line])
def test_the_notes_staged_example_has_the_notes_stages(f):
    staged = cr.stage(f, 3.0, -4.0, wrt=(0, 1))
    forward, backward = _forward_and_backward(staged.source)
    if f is notes_staged:
        assert forward == ["sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden", "f"]
    else:  # a quotient is one stage, as in the expression
        assert forward == ["sigy", "xpsigy", "sigx", "xpy", "xpysqr", "t6", "one_line"]
    # backward: the forward stages in reverse, two += into dx and one into dy
    numbers = [int(n) for _, _, n in backward]
    assert numbers == sorted(numbers, reverse=True) and set(numbers) == set(
        range(1, len(forward) + 1)
    )
    assert [(v, op) for v, op, _ in backward].count(("dx", "+=")) == 2
    assert [(v, op) for v, op, _ in backward].count(("dy", "+=")) == 1
    assert [v for v, op, _ in backward if op == "="].count("dx") == 1
    assert "* 1.0" not in staged.source and "1.0 *" not in staged.source  # the seed is folded
    value, (dx, dy) = staged(3.0, -4.0)
    expected_value, (ex, ey) = cr.value_and_grad(f, (0, 1))(3.0, -4.0)
    assert (value, dx, dy) == (expected_value, ex, ey)  # the engine's own operations


def test_the_notes_staged_example_reads_like_the_notes():
    source = cr.stage(notes_staged, 3.0, -4.0, wrt=(0, 1)).source
    for line in (
        "dnum = invden",
        "dinvden = num",
        "dxpy = 2 * xpy * dxpysqr",
        "dx += (1 - sigx) * sigx * dsigx",
        "dy += (1 - sigy) * sigy * dsigy",
        "return f, (dx, dy)",
    ):
        assert line in source


def test_the_notes_chain_example():
    def f(x, y, z):
        q = x + y
        return q * z

    staged = cr.stage(f, -2.0, 5.0, -4.0, wrt=(0, 1, 2))
    value, grads = staged(-2.0, 5.0, -4.0)
    assert value == -12.0
    assert [float(g) for g in grads] == [-4.0, -4.0, 3.0]
    assert "dq = z" in staged.source and "q = x + y" in staged.source


def test_the_notes_sigmoid_neuron():
    def neuron(w, x):
        dot = w[0] * x[0] + w[1] * x[1] + w[2]
        return cr.sigmoid(dot)

    staged = cr.stage(neuron, np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]), wrt=(0, 1))
    value, (dw, dx) = staged(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]))
    assert round(float(value), 2) == 0.73
    np.testing.assert_allclose(dx, [0.393, -0.590], atol=5e-4)
    np.testing.assert_allclose(dw, [-0.197, -0.393, 0.197], atol=5e-4)
    assert "ddot" in staged.source


# --- what is (not) emitted ----------------------------------------------------------------------
def test_dead_stages_are_not_emitted():
    def f(x, y):
        a = cr.tanh(y) * 3.0
        return (cr.exp(x) * a).sum()

    staged = cr.stage(f, np.ones(3), np.ones(3), wrt=0)
    backward = staged.source.split("# backward pass")[1]
    assert "dx" in backward and "dy" not in backward and "da" not in backward
    value, dx = staged(np.ones(3), np.full(3, 2.0))
    np.testing.assert_allclose(dx, np.e * np.tanh(2.0) * 3.0, rtol=1e-12)
    assert cr.stage(f, np.ones(3), np.ones(3), wrt=(1,)).wrt == (1,)


def test_a_gradient_the_output_does_not_depend_on_is_zero():
    staged = cr.stage(lambda x, y: (x * 2.0).sum(), np.ones(2), np.ones(3), wrt=(0, 1))
    value, (dx, dy) = staged(np.ones(2), np.ones(3))
    assert value == 4.0 and np.array_equal(dx, [2.0, 2.0]) and np.array_equal(dy, np.zeros(3))


def test_returned_gradients_never_alias_inputs_or_each_other():
    staged = cr.stage(lambda x, y: x * y, 2.0, 5.0, wrt=(0, 1), buffers=False)
    x, y = np.array(2.0), np.array(5.0)
    _, (dx, dy) = staged(x, y)
    assert dx is not y and dy is not x and float(dx) == 5.0
    staged = cr.stage(lambda x, y: (x + y).sum(), np.ones(2), np.ones(2), wrt=(0, 1))
    _, (dx, dy) = staged(np.ones(2), np.ones(2))
    assert not np.shares_memory(dx, dy)


def test_arrays_are_written_into_buffers_with_out():
    staged = cr.stage(lambda x, w: cr.sigmoid(x @ w).sum(), np.ones((4, 3)), np.ones((3, 2)), wrt=1)
    assert "np.matmul(x, w, " in staged.source and "= np.empty((4, 2))" in staged.source
    first = staged(np.ones((4, 3)), np.ones((3, 2)))[1]
    second = staged(np.ones((4, 3)), np.zeros((3, 2)))[1]
    assert first is second  # the staged function's own buffer, overwritten by each call


def test_the_namespace_holds_numpy_the_trace_constants_and_kernels_only():
    mask = np.array([True, False, True])
    staged = cr.stage(lambda x: cr.where(mask, x, 0.0).sum() + cr.softmax(x)[0], np.ones(3))
    names = staged._fn.__globals__
    assert names["__builtins__"] == {}
    assert names["np"] is np
    kernel = sys.modules["chainrule.ops.softmax"].softmax_forward
    assert names["softmax_forward"] is kernel  # the gate's own kernel
    others = [v for k, v in names.items() if k not in ("np", "__builtins__", "softmax_forward")]
    assert all(
        isinstance(v, np.ndarray) or v is staged._fn or v.__module__.startswith("chainrule.ops")
        for v in others
    )


def test_look_alike_names_never_merge_and_inputs_are_never_written():
    def f(x):
        ｘ = cr.sigmoid(x)  # noqa: PLC2401 - full-width x, NFKC-equal to x
        return (ｘ * x).sum()

    x = np.linspace(-1.0, 1.0, 4)
    kept = x.copy()
    staged = cr.stage(f, x)
    assert "x_2 = " in staged.source or "np.negative(x, x_2)" in staged.source
    value, grad = staged(x)
    expected_value, expected_grad = cr.value_and_grad(f)(kept)
    np.testing.assert_array_equal(x, kept)
    assert value == expected_value and np.array_equal(grad, expected_grad)


def test_local_names_never_replace_a_running_profiler():
    calls = []

    def profiler(frame, event, arg):
        calls.append(event)

    sys.setprofile(profiler)
    try:
        staged = cr.stage(notes_staged, 3.0, -4.0, wrt=(0, 1))
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert calls and "num = " not in staged.source  # gate-derived names instead
    assert sys.getprofile() is None
    assert "num = " in cr.stage(notes_staged, 3.0, -4.0).source and sys.getprofile() is None


def test_integer_inputs_are_passed_through_as_indices():
    def pick(scores, labels):
        return scores[np.arange(3), labels].sum()

    scores = np.arange(12.0).reshape(3, 4)
    staged = cr.stage(pick, scores, np.array([0, 1, 2]))
    value, grad = staged(scores, np.array([3, 3, 0]))
    assert value == 3 + 7 + 8
    assert grad[0, 3] == grad[1, 3] == grad[2, 0] == 1 and grad.sum() == 3


def test_user_tensor_names_are_used():
    x = cr.tensor(1.5, name="alpha")
    staged = cr.stage(lambda t: cr.exp(t) * 2.0, x)
    assert "def f_staged(alpha):" in staged.source and "dalpha" in staged.source


def test_a_long_chain_stages_iteratively():
    def chain(x):
        for _ in range(3000):
            x = x * 1.0001
        return x

    value, grad = cr.stage(chain, 1.0)(1.0)
    assert value == pytest.approx(1.0001**3000) and grad == pytest.approx(1.0001**3000)


# --- user gates -------------------------------------------------------------------------------
class Cube(Gate):
    """x**3 with a backward in chainrule operations and no staged code: it stages by itself."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (3 * x * x * grad,)


class NumpyCube(Cube):
    """The same derivative computed with NumPy on the saved array: outside chainrule."""

    name = "numpy_cube"

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (3 * np.asarray(x) ** 2 * np.asarray(grad),)


class SavedSquare(Cube):
    """Saves a derived value (3x², computed in forward) and multiplies by it."""

    name = "saved_square"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(3 * x * x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (local,) = ctx.saved_tensors
        return (local * grad,)


@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]))
def test_a_user_gate_stages_from_its_own_forward_and_backward(data, dtype):
    x = data.draw(arrays(data.draw(SHAPES))).astype(dtype)
    staged = check(lambda t: Cube.apply(t) + t, x, rtol=1e-15 if dtype == np.float64 else 1e-6)
    assert "cube(x0)" in staged.source  # a call of the gate's own forward


def test_a_backward_that_leaves_chainrule_is_refused_by_name():
    with pytest.raises(cr.GateError, match="gate 'numpy_cube'.*returned a raw ndarray"):
        cr.stage(lambda x: NumpyCube.apply(x).sum(), np.ones(2))


def test_a_gate_saving_a_derived_value_stages_with_that_value_recomputed():
    staged = check(lambda t: SavedSquare.apply(t), np.array([2.0, -3.0, 0.5]))
    assert "saved_square(x0)" in staged.source


# --- errors -------------------------------------------------------------------------------------
def test_inputs_unlike_the_trace_are_refused():
    staged = cr.stage(lambda x, y: (x * y).sum(), np.ones(3), np.ones(3), wrt=(0, 1))
    with pytest.raises(StageError, match="'y' has shape \\(4,\\) but f was traced with shape"):
        staged(np.ones(3), np.ones(4))
    with pytest.raises(StageError, match="'x' has dtype float32"):
        staged(np.ones(3, np.float32), np.ones(3))
    with pytest.raises(StageError, match="takes 2 input"):
        staged(np.ones(3))
    value, _ = staged([1, 2, 3], cr.tensor([1.0, 1.0, 1.0]))  # lists, ints and Tensors convert
    assert value == 6.0


@pytest.mark.parametrize(
    "f,what",
    [
        (lambda x: x * 2 if x > 0 else -x, "comparison '>'"),
        (lambda x: x * 2 if bool(x) else -x, "bool()"),
        (lambda x: x * float(x), "item()"),
        (lambda x: (x * 2).sum() if (x.sum() >= 1) else x.sum(), "comparison '>='"),
    ],
)
def test_data_dependent_control_flow_is_refused_while_tracing(f, what):
    with pytest.raises(cr.GateError, match=re.escape(what) + ".*data-dependent control flow"):
        cr.stage(f, np.array(2.0))
    assert not cr.Tensor._staging
    assert float(f(cr.tensor(2.0))) == 4.0  # outside stage the eager engine follows the branch


def test_bad_functions_and_arguments_are_refused():
    with pytest.raises(StageError, match="must return a Tensor"):
        cr.stage(lambda x: 3.0, 1.0)
    with pytest.raises(StageError, match="single number"):
        cr.stage(lambda x: x * 2, np.ones(3))
    with pytest.raises(StageError, match="out of range"):
        cr.stage(lambda x: x, 1.0, wrt=1)
    with pytest.raises(StageError, match="repeated"):
        cr.stage(lambda x, y: x * y, 1.0, 2.0, wrt=(0, 0))
    with pytest.raises(StageError, match="only floating inputs have gradients"):
        cr.stage(lambda x, i: x[i].sum(), np.ones(3), np.array([0]), wrt=1)
    w = cr.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(StageError, match="requires grad but is not one of its inputs"):
        cr.stage(lambda x: (x * w).sum(), np.ones(2))


@given(g=arrays((2, 3)))
def test_scatter_add(g):
    from chainrule.ops.shape import scatter_add

    check(lambda t: scatter_add(t, (slice(1, 3), slice(None)), (4, 3), np.float64), g)
    check(lambda t: scatter_add(t, (np.array([0, 0]),), (3, 3), np.float64), g)


@given(x=arrays((4, 3)), w=arrays((2, 3)), b=arrays((2,)))
def test_nn_functional_gates_stage(x, w, b):
    labels = np.array([0, 1, 1, 0])
    F = cr.nn.functional
    check(lambda a, c, d: F.linear(a, c, d), x, w, b)
    check(
        lambda a, c, d, i: F.cross_entropy(F.linear(a, c, d), i, reduction="none"),
        x,
        w,
        b,
        labels,
        wrt=(0, 1, 2),
    )


# --- every gate, in float64 and float32 ---------------------------------------------------------
F = cr.nn.functional
EDGE = st.one_of(TIES, st.sampled_from([1e4, -1e4]), st.floats(-3, 3, allow_nan=False, width=32))
LABELS = np.array([0, 2, 1, 2])
RUNNING = (np.array([0.5, -1.0, 2.0]), np.array([0.25, 1.0, 4.0]))  # batch norm's statistics


def _positive(a):
    return a * a + 0.5


def _pooled_with_indices(a, b):
    out, indices = F.max_pool2d(a, 2, 2, 1, ceil_mode=True, return_indices=True)
    return cr.where(cr.greater(indices, 6), out, b)


# One use of each gate (its forward, or a forward whose backward records it), the shapes of its
# inputs ("pair": two mutually broadcastable shapes), and, for gates that meet inf/nan on ±1e4 in a
# way eager and staged code cannot both reach (none here), a note. Forks: most uses reuse an input.
GATE_USES = {
    "Add": (lambda a, b: a + b + a, "pair"),
    "Sub": (lambda a, b: a - b - b, "pair"),
    "Mul": (lambda a, b: a * b * a, "pair"),
    "Div": (lambda a, b: a / _positive(b), "pair"),
    "Neg": (lambda a, b: -a * b, "pair"),
    "Translate": (lambda a, b: (a + 2.5) * (1 - b), "pair"),
    "Scale": (lambda a, b: 3.0 * a + b, "pair"),
    "Reciprocal": (lambda a, b: 1.0 / _positive(a) + b, "pair"),
    "PowConst": (lambda a, b: a**3 + a**2 + b**0, "pair"),
    "Pow": (lambda a, b: _positive(a) ** b, "pair"),
    "BroadcastTo": (lambda a, b: a * b, "pair"),
    "Exp": (lambda a, b: cr.exp(cr.tanh(a)) * b, "pair"),
    "Log": (lambda a, b: cr.log(_positive(a)) * b, "pair"),
    "Sqrt": (lambda a, b: cr.sqrt(_positive(a)) + b, "pair"),
    "Tanh": (lambda a, b: cr.tanh(a * b), "pair"),
    "Sigmoid": (lambda a, b: cr.sigmoid(a) * b, "pair"),
    "Relu": (lambda a, b: cr.relu(a) * b + cr.relu(b), "pair"),
    "Abs": (lambda a, b: abs(a) * b, "pair"),
    "Sign": (lambda a, b: cr.sign(b) * a, "pair"),
    "Clip": (lambda a, b: cr.clip(a, -1.0, 1.0) + cr.clip(b, lo=0.0) + cr.clip(a, hi=0.5), "pair"),
    "Maximum": (lambda a, b: cr.maximum(a, b) * a, "pair"),
    "Minimum": (lambda a, b: cr.minimum(a, b) * b, "pair"),
    "Where": (lambda a, b: cr.where(cr.greater(a, b), a, b * 2.0), "pair"),
    "Greater": (lambda a, b: cr.where(cr.greater(a, 0.0), a, b), "pair"),
    "GreaterEqual": (lambda a, b: cr.where(cr.greater_equal(a, b), a, b), "pair"),
    "Less": (lambda a, b: cr.where(cr.less(a, b), a, b), "pair"),
    "LessEqual": (lambda a, b: cr.where(cr.less_equal(a, 1.0), a, b), "pair"),
    "Equal": (lambda a, b: cr.where(cr.equal(a, b), a, b * 3.0), "pair"),
    "LogicalAnd": (
        lambda a, b: cr.where(cr.logical_and(cr.greater(a, 0.0), cr.less(b, 1.0)), a, b),
        "pair",
    ),
    "LogicalNot": (lambda a, b: cr.where(cr.logical_not(cr.greater(a, b)), a, b), "pair"),
    "MatMul": (lambda a, b: a @ b @ b.T, ((3, 4), (4, 2))),
    "Sum": (lambda a, b: a.sum(axis=1, keepdims=True) * b + b.sum(), ((2, 3), (2, 3))),
    "Mean": (lambda a, b: a.mean(axis=0) * b, ((2, 3), (2, 3))),
    "Max": (lambda a, b: a.max(axis=1) + b.max(), ((2, 3), (2,))),
    "Min": (lambda a, b: a.min(axis=0, keepdims=True) * b, ((2, 3), (2, 3))),
    "TieShare": (lambda a, b: cr.max(a * b), ((2, 3), (2, 3))),
    "LogSumExp": (lambda a, b: cr.logsumexp(a * b, axis=1), ((2, 3), (2, 3))),
    "LinearCombination": (lambda a, b: cr.linear_combination([a, b], [b, a], a), ((2, 3), (2, 3))),
    "Reshape": (lambda a, b: a.reshape(3, 2) @ b, ((2, 3), (2, 2))),
    "Transpose": (lambda a, b: cr.transpose(a, (1, 0, 2)) * b, ((2, 3, 2), (3, 2, 2))),
    "GetItem": (lambda a, b: a[1:, ::2] * a[[0, 0, 1]][:1, :2] + b[None, 1:], ((2, 3), (3,))),
    "ScatterAdd": (lambda a, b: a[[1, 1]] * b, ((2, 3), (2, 3))),
    "Concatenate": (lambda a, b: cr.concatenate([a, b, a], axis=1), ((2, 3), (2, 1))),
    "Stack": (lambda a, b: cr.stack([a, b, a], axis=-1), ((2, 3), (2, 3))),
    "Softmax": (lambda a, b: cr.softmax(a * b, axis=0), ((3, 4), (3, 4))),
    "LogSoftmax": (lambda a, b: cr.log_softmax(a + b, axis=1), ((3, 4), (3, 4))),
    "Affine": (lambda a, b: F.linear(a, b, b[0]), ((5, 3), (3, 3))),
    "SoftmaxCrossEntropy": (lambda a, b: F.cross_entropy(a * b, LABELS), ((4, 3), (4, 3))),
    "OneHot": (lambda a, b: F.cross_entropy(a, LABELS, "sum") * b, ((4, 3), ())),
    "Pad": (lambda a, b: F.pad(a, (1, 2)) * b, ((2, 3), (2, 6))),
    "PadBorder": (lambda a, b: F.pad(a, (2, 1), "reflect") * b, ((2, 3), (2, 6))),
    "PadFold": (lambda a, b: cr.pad(a * b, ((1, 0), (4, 2)), "wrap"), ((2, 3), (2, 3))),
    "Conv2d": (lambda a, b: F.conv2d(a, b, padding=1), ((2, 2, 4, 4), (3, 2, 3, 3))),
    "Conv2dInputGrad": (lambda a, b: F.conv2d(a, b, stride=2), ((1, 2, 5, 5), (2, 2, 3, 3))),
    "Conv2dWeightGrad": (lambda a, b: F.conv2d(a * a, b), ((1, 1, 4, 4), (2, 1, 2, 2))),
    "MaxPool2d": (lambda a, b: F.max_pool2d(a, 2) * b, ((1, 2, 4, 4), (1, 2, 2, 2))),
    "MaxPool2dScatter": (
        lambda a, b: F.max_pool2d(a * b, 2, stride=1),
        ((1, 1, 3, 3), (1, 1, 3, 3)),
    ),
    "MaxPool2dGather": (
        lambda a, b: F.max_pool2d(a, 3, padding=1) + b,
        ((1, 1, 4, 4), (1, 1, 2, 2)),
    ),
    "MaxPool2dIndices": (
        lambda a, b: _pooled_with_indices(a, b),
        ((1, 2, 4, 5), (1, 2, 3, 3)),
    ),
    "AvgPool2d": (lambda a, b: F.avg_pool2d(a, 2) * b, ((1, 2, 4, 4), (1, 2, 2, 2))),
    "AvgPool2dScatter": (
        lambda a, b: (
            F.avg_pool2d(a * b, 2, stride=2, padding=1, ceil_mode=True)
            + F.avg_pool2d(a, 2, 2, 0, True, False, 3)
        ),
        ((1, 1, 3, 3), (1, 1, 3, 3)),
    ),
    "BatchNorm": (
        lambda a, b: (
            F.batch_norm(a, None, None, b[0], b[1], training=True)
            + F.batch_norm(a * b[0], np.zeros(3), np.ones(3), training=True)  # updates them
        ),
        ((4, 3), (2, 3)),
    ),
    "Standardize": (
        lambda a, b: F.batch_norm(a, *RUNNING, b[0], b[1], training=False),
        ((4, 3), (2, 3)),
    ),
    "LayerNorm": (lambda a, b: F.layer_norm(a, (3,), b[0], b[1]), ((4, 3), (2, 3))),
    "GroupNorm": (lambda a, b: F.group_norm(a, 2, b[0], b[1]), ((2, 4, 3), (2, 4))),
    "Sin": (lambda a, b: cr.sin(a) * b, "pair"),
    "Cos": (lambda a, b: cr.cos(a) + b, "pair"),
    "Tan": (lambda a, b: cr.tan(cr.tanh(a)) * b, "pair"),
    "Arcsin": (lambda a, b: cr.arcsin(cr.tanh(a) * 0.9) * b, "pair"),
    "Arccos": (lambda a, b: cr.arccos(cr.tanh(a) * 0.9) * b, "pair"),
    "Arctan": (lambda a, b: cr.arctan(a) * b, "pair"),
    "Arcsinh": (lambda a, b: cr.arcsinh(a) * b, "pair"),
    "Arctanh": (lambda a, b: cr.arctanh(cr.tanh(a) * 0.9) * b, "pair"),
    "Sinh": (lambda a, b: cr.sinh(cr.tanh(a)) * b, "pair"),
    "Cosh": (lambda a, b: cr.cosh(cr.tanh(a)) * b, "pair"),
    "Arctan2": (lambda a, b: cr.arctan2(a, b), "pair"),
    "Hypot": (lambda a, b: cr.hypot(a, b), "pair"),
    "Logaddexp": (lambda a, b: cr.logaddexp(a, b), "pair"),
    "Exp2": (lambda a, b: cr.exp2(cr.tanh(a)) * b, "pair"),
    "Expm1": (lambda a, b: cr.expm1(cr.tanh(a)) * b, "pair"),
    "Log1p": (lambda a, b: cr.log1p(_positive(a)) * b, "pair"),
    "Log2": (lambda a, b: cr.log2(_positive(a)) * b, "pair"),
    "Log10": (lambda a, b: cr.log10(_positive(a)) * b, "pair"),
    "Floor": (lambda a, b: cr.floor(a) * b + a, "pair"),
    "Ceil": (lambda a, b: cr.ceil(a) * b + a, "pair"),
    "Square": (lambda a, b: cr.square(a) * b, "pair"),
    "CumSum": (lambda a, b: cr.cumsum(a * b, axis=1), ((2, 3), (2, 3))),
    # (their backward branches on whether an input is 0, so staged code is checked away from 0)
    "CumProd": (lambda a, b: cr.cumprod(_positive(a) * _positive(b), axis=0), ((3, 2), (3, 2))),
    "Prod": (lambda a, b: cr.prod(_positive(a) * _positive(b), axis=1), ((2, 3), (2, 3))),
    "Einsum": (lambda a, b: cr.einsum("ij,jk->ik", a, b), ((2, 3), (3, 2))),
    "Triangle": (lambda a, b: cr.tril(a) * b + cr.triu(b, 1), ((3, 3), (3, 3))),
    "SetDiagonal": (lambda a, b: cr.prod(_positive(a) * b, axis=1), ((2, 3), (2, 3))),
    # (seeded: the same mask at every call, eager or staged; test_dropout_stage.py checks the
    # draws from a generator)
    "DropoutMask": (lambda a, b: F.dropout(a * b, 0.5, seed=0) * a, "pair"),
}


# Gates that exist to run Python code at backward time (module hooks): nothing to stage.
NOT_STAGED = {
    "BackwardHookInputs": "module backward hooks",
    "BackwardHookStash": "module backward hooks",
    "BackwardHookOutput": "module backward hooks",
}


def _concrete_gates() -> list[type]:
    """Every Gate subclass chainrule defines that has no subclasses of its own."""
    found, stack = [], [Gate]
    while stack:
        cls = stack.pop()
        subs = cls.__subclasses__()
        stack.extend(subs)
        if not subs and cls.__module__.startswith("chainrule."):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.parametrize("gate", _concrete_gates(), ids=lambda c: c.__name__)
@settings(max_examples=8)
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]))
def test_every_gate_stages_to_the_engines_values(gate, data, dtype):
    if gate.__name__ in NOT_STAGED:
        pytest.skip(NOT_STAGED[gate.__name__])
    assert gate.__name__ in GATE_USES, f"add a use of gate {gate.__name__} to GATE_USES"
    fn, shapes = GATE_USES[gate.__name__]
    if shapes == "pair":
        shapes = data.draw(PAIRS)
    a, b = (data.draw(arrays(s, EDGE)).astype(dtype) for s in shapes)
    with np.errstate(all="ignore"):
        check(fn, a, b, rtol=1e-15 if dtype == np.float64 else 1e-6)
