"""Tensor, the array front end: creation helpers, array facts, dtype rules, mixing with NumPy
arrays and Python numbers, comparisons, backward and its errors (nothing left half-updated),
repeated backward, custom gates over arrays, and memory of a large elementwise backward."""

import tracemalloc
import weakref

import numpy as np
import pytest
from oracle import compare

import chainrule as cr

# --- creation ------------------------------------------------------------------------------------


def test_tensor_copies_its_data_and_follows_numpy_dtypes():
    source = np.array([1.0, 2.0])
    t = cr.tensor(source)
    source[0] = 99.0
    assert t.data[0] == 1.0
    assert cr.tensor([1.0, 2.0]).dtype == np.float64  # Python floats give float64
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.tensor([True]).dtype == np.bool_
    assert cr.tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert cr.tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert cr.tensor(cr.tensor([1.0])).data.tolist() == [1.0]


@pytest.mark.parametrize("data", [[1, 2], [True, False], np.arange(3, dtype=np.uint8)])
def test_int_and_bool_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="only floating tensors can require grad"):
        cr.tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="only floating tensors can require grad"):
        cr.arange(3, requires_grad=True)


def test_unsupported_dtypes_are_refused():
    with pytest.raises(TypeError, match="unsupported dtype complex128"):
        cr.tensor([1j])
    with pytest.raises(TypeError, match="unsupported dtype"):
        cr.tensor(["a"])


def test_creation_helpers():
    z = cr.zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == np.float64 and not z.requires_grad
    assert np.all(z.data == 0)
    o = cr.ones((3,), dtype=np.float32, requires_grad=True)
    assert o.shape == (3,) and o.dtype == np.float32 and o.requires_grad
    assert np.all(o.data == 1)
    a = cr.arange(5)
    assert a.data.tolist() == [0, 1, 2, 3, 4] and a.dtype == np.int64
    assert cr.arange(0.0, 1.0, 0.25).data.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert cr.arange(3, dtype=np.float32, requires_grad=True).dtype == np.float32


def test_randn_is_reproducible_from_a_seed_or_a_generator():
    a = cr.randn(2, 3, seed=7)
    b = cr.randn((2, 3), seed=7)
    c = cr.randn(2, 3, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.data, c.data)
    assert not np.array_equal(a.data, cr.randn(2, 3, seed=8).data)
    gen = np.random.default_rng(0)
    assert not np.array_equal(cr.randn(3, generator=gen).data, cr.randn(3, generator=gen).data)
    with pytest.raises(TypeError, match="seed or generator, not both"):
        cr.randn(2, seed=1, generator=gen)
    f = cr.randn(4, seed=0, dtype=np.float32, requires_grad=True)
    assert f.dtype == np.float32 and f.requires_grad


# --- array facts ---------------------------------------------------------------------------------


def test_array_facts():
    t = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.T.shape == (3, 2)
    assert t.grad is None and t.requires_grad and t.is_leaf
    assert cr.tensor(2.5).item() == 2.5 and float(cr.tensor([2.5])) == 2.5
    assert t.numpy() is t.data
    d = t.detach()
    assert d.data is t.data and not d.requires_grad
    assert np.asarray(t).shape == (2, 3)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="0-d"):
        len(cr.tensor(1.0))


def test_repr_shows_data_and_flags():
    assert repr(cr.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    r = repr(cr.tensor([1.0], dtype=np.float32, requires_grad=True, name="w"))
    assert r == "tensor([1.], name='w', requires_grad=True, dtype=float32)"


def test_truth_value_of_a_tensor():
    assert bool(cr.tensor([1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\) is ambiguous.*cr.where"):
        bool(cr.tensor([1.0, 2.0]))


# --- mixing and comparisons ----------------------------------------------------------------------


def test_numpy_arrays_on_the_left_give_tensors():
    x = cr.tensor(np.ones(3), requires_grad=True)
    for out in (
        np.ones(3) + x,
        np.ones(3) - x,
        np.ones(3) * x,
        np.ones(3) / x,
        np.ones(3) ** x,
        np.ones((2, 3)) @ x,
        [1.0, 2.0, 3.0] + x,
        x + [1.0, 2.0, 3.0],
    ):
        assert isinstance(out, cr.Tensor) and out.requires_grad


@pytest.mark.parametrize("op", ["__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"])
def test_comparisons_return_bool_arrays_not_gates(op):
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    expected = getattr(np.array([1.0, 2.0, 3.0]), op)(np.array([2.0, 2.0, 2.0]))
    for other in (2.0, np.full(3, 2.0), cr.tensor([2.0, 2.0, 2.0])):
        result = getattr(x, op)(other)
        assert isinstance(result, np.ndarray) and result.dtype == np.bool_
        np.testing.assert_array_equal(result, expected)
    assert isinstance(2.0 < x, np.ndarray)
    assert isinstance(np.full(3, 2.0) < x, np.ndarray)
    np.testing.assert_array_equal(np.full(3, 2.0) < x, [False, False, True])


def test_tensors_are_hashable_nodes():
    x = cr.tensor([1.0])
    assert {x: 1}[x] == 1


def test_a_tensor_cannot_be_combined_with_a_value():
    with pytest.raises(cr.GateError, match="cannot combine a Tensor with a Value"):
        cr.tensor([1.0]) + cr.Value(1.0)


def test_float32_is_preserved_through_a_whole_circuit(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 2)).astype(np.float32)

    def f(a, b):
        h = (a @ b).tanh() * 2.0 + 1
        return (h.sigmoid() - h.exp() / 3).sum(axis=0).max() + h.abs().mean()

    compare(f, f, x, w)


# --- backward ------------------------------------------------------------------------------------


def test_backward_of_a_scalar_seeds_one_and_accumulates():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_backward_seed_is_cast_to_the_tensor_dtype():
    x = cr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    (x * 2).backward(np.array([1, 2]))  # an int seed is fine
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_backward_errors_leave_nothing_half_updated():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    x.grad = np.array([10.0, 10.0])
    y = x * 3
    with pytest.raises(RuntimeError, match=r"shape \(2,\) needs grad="):
        y.backward()
    with pytest.raises(cr.GateError, match=r"grad has shape \(3,\) but the tensor has shape"):
        y.backward(np.ones(3))
    with pytest.raises(cr.GateError, match="real array, got dtype complex128"):
        y.backward(np.ones(2, dtype=complex))
    with pytest.raises(cr.GateError, match="real array, got dtype bool"):
        y.backward(np.ones(2, dtype=bool))
    with pytest.raises(cr.GateError, match="inf or nan"):
        y.backward(np.array([1.0, np.nan]))
    np.testing.assert_array_equal(x.grad, [10.0, 10.0])
    y.backward(np.ones(2))  # the circuit is intact
    np.testing.assert_array_equal(x.grad, [13.0, 13.0])


def test_a_failed_gate_leaves_its_operands_alone():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(cr.GateError, match=r"gate 'add'.*\(2, 3\) and \(4,\)"):
        x + np.ones(4)
    with pytest.raises(cr.GateError, match=r"gate 'mul'.*\(2, 3\) and \(3, 2\)"):
        x * cr.ones(3, 2, requires_grad=True)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_a_failing_custom_backward_accumulates_nothing():
    class Broken(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("broken rule")

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor([3.0, 4.0], requires_grad=True)
    out = (x * 2 + Broken.apply(y)).sum()
    with pytest.raises(ValueError, match="broken rule"):
        out.backward()
    assert x.grad is None and y.grad is None


def test_backward_on_a_constant_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (cr.tensor([1.0]) * 2).backward()


def test_a_released_circuit_refuses_a_second_backward_and_retain_graph_keeps_it():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * (np.exp([1.0, 2.0]) * ([1.0, 2.0] + np.ones(2))))
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_intermediate_gradients_only_when_retained():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 2).retain_grad()
    k = h * 3
    k.sum().backward()
    np.testing.assert_array_equal(h.grad, [3.0, 3.0])
    assert k.grad is None


def test_a_leaf_used_twice_gets_both_gradients():
    x = cr.tensor([3.0], requires_grad=True)
    (x * x).backward(np.ones(1))
    np.testing.assert_array_equal(x.grad, [6.0])


def test_no_grad_records_nothing():
    x = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf


def test_integer_results_do_not_require_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    i = cr.arange(2)
    assert not (i * 2).requires_grad
    out = x[i]
    assert out.requires_grad


# --- custom gates over tensors -------------------------------------------------------------------


class Cube(cr.Gate):
    """x³ with local gradient 3x² (written once, for floats and arrays alike)."""

    @staticmethod
    def forward(ctx, x):
        assert isinstance(x, np.ndarray)
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad * 3 * x * x,)


def test_custom_gate_over_tensors(rng):
    x = rng.standard_normal((2, 3))
    compare(lambda t: Cube.apply(t), lambda t: t**3, x)
    assert cr.gradcheck(lambda t: Cube.apply(t).sum(), x)
    np.testing.assert_allclose(
        cr.hessian(lambda t: Cube.apply(t).sum())(np.ones(2)), np.diag([6.0, 6.0])
    )


# --- memory --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda x: x.exp(), lambda x: x * x], ids=["exp", "mul"])
def test_backward_of_ten_million_elements_needs_a_few_arrays_of_memory(make):
    n = 10_000_000
    x = cr.tensor(np.full(n, 0.5), requires_grad=True)
    array_bytes = x.data.nbytes
    tracemalloc.start()
    try:
        make(x).sum().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.grad.shape == (n,)
    assert peak < 6 * array_bytes, f"peak {peak / array_bytes:.1f} arrays"


def test_leaf_gradients_are_never_shared_arrays():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(np.ones(2))  # add hands the same upstream array to both inputs
    assert a.grad is not b.grad
    a.grad += 1  # in place, as an optimizer might
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    seed = np.ones(2)
    c = cr.tensor([1.0, 2.0], requires_grad=True)
    (c + 1).backward(seed)  # the seed passes through translate unchanged
    assert c.grad is not seed
    c.grad *= 5
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    d = cr.tensor(np.ones((2, 3)), requires_grad=True)
    d.sum().backward()  # a broadcast view upstream: the leaf gets its own writable array
    assert d.grad.flags.writeable and d.grad.flags.owndata


def test_a_fresh_gradient_is_adopted_without_a_copy():
    made = []

    class Double(cr.Gate):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            g = grad * 2
            made.append(weakref.ref(g))  # watch it without holding it
            return (g,)

    w = cr.tensor(np.ones((3, 2)), requires_grad=True)
    Double.apply(w).backward(np.ones((3, 2)))
    assert made[0]() is w.grad
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 2.0))


def test_creation_helpers_take_a_name():
    for made in (
        cr.zeros(2, name="a"),
        cr.ones(2, name="a"),
        cr.randn(2, seed=0, name="a"),
        cr.arange(3.0, name="a"),
    ):
        assert made.name == "a"


def test_argmax_and_argmin_follow_numpy_and_carry_no_gradient():
    x = cr.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
    np.testing.assert_array_equal(x.argmax(axis=1), [1, 0])
    np.testing.assert_array_equal(x.argmin(axis=0), [0, 1, 0])
    assert x.argmax() == 3 and x.argmax(axis=1, keepdims=True).shape == (2, 1)
    assert isinstance(x.argmax(), np.integer | np.ndarray)
