"""NumPy breadth: the new elementwise gates, prod/var/std/cumsum/cumprod, einsum and the
contractions, the rearranging functions, argmax/argmin, and NumPy's own functions on Tensors
(__array_ufunc__ / __array_function__): values, gradients and second derivatives against
PyTorch, gradcheck, and clear refusals."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare, compare_second_order

import chainrule as cr

DTYPES = st.sampled_from([np.float32, np.float64])

# name: (chainrule, torch, domain of the inputs)
UNARY = {
    "sin": (cr.sin, torch.sin, "real"),
    "cos": (cr.cos, torch.cos, "real"),
    "tan": (cr.tan, torch.tan, "unit"),
    "arcsin": (cr.arcsin, torch.asin, "unit"),
    "arccos": (cr.arccos, torch.acos, "unit"),
    "arctan": (cr.arctan, torch.atan, "real"),
    "sinh": (cr.sinh, torch.sinh, "real"),
    "cosh": (cr.cosh, torch.cosh, "real"),
    "arcsinh": (cr.arcsinh, torch.asinh, "real"),
    "arctanh": (cr.arctanh, torch.atanh, "unit"),
    "sign": (cr.sign, torch.sign, "real"),
    "floor": (cr.floor, torch.floor, "real"),
    "ceil": (cr.ceil, torch.ceil, "real"),
    "square": (cr.square, torch.square, "real"),
    "expm1": (cr.expm1, torch.expm1, "real"),
    "log1p": (cr.log1p, torch.log1p, "positive"),
    "log2": (cr.log2, torch.log2, "positive"),
    "log10": (cr.log10, torch.log10, "positive"),
    "exp2": (cr.exp2, torch.exp2, "real"),
}
BINARY = {
    "arctan2": (cr.arctan2, torch.atan2),
    "hypot": (cr.hypot, torch.hypot),
    "logaddexp": (cr.logaddexp, torch.logaddexp),
}


def _values(rng, shape, domain, dtype):
    x = rng.standard_normal(shape) * 1.5
    if domain == "unit":
        x = np.tanh(x) * 0.9
    elif domain == "positive":
        x = np.abs(x) + 0.2
    return x.astype(dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=6)
@given(shape=st.sampled_from([(), (3,), (2, 3)]), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_unary_gates_match_torch(name, shape, dtype, seed):
    ours, theirs, domain = UNARY[name]
    x = _values(np.random.default_rng(seed), shape, domain, dtype)
    compare(ours, theirs, x)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_second_derivatives_and_gradcheck(name):
    ours, theirs, domain = UNARY[name]
    x = _values(np.random.default_rng(1), (4,), domain, np.float64)
    x = x + 0.25 if name in ("floor", "ceil") else x  # away from the jumps
    compare_second_order(ours, theirs, x)
    assert cr.gradcheck(ours, x)


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=8)
@given(shapes=st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3))]), dtype=DTYPES)
def test_binary_gates_match_torch_with_broadcasting(name, shapes, dtype):
    ours, theirs = BINARY[name]
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal(s).astype(dtype) + 0.1 for s in shapes)
    compare(ours, theirs, a, b)
    compare_second_order(ours, theirs, a, b)


def test_scalar_values_and_domain_errors():
    x = cr.Value(0.5, requires_grad=True)
    y = cr.sin(x) * cr.log2(x) + cr.arctan2(x, 2.0)
    y.backward()
    expected = np.cos(0.5) * np.log2(0.5) + np.sin(0.5) / (0.5 * np.log(2)) + 2 / (4 + 0.25)
    assert x.grad == pytest.approx(expected)
    with pytest.raises(cr.GateError, match="gate 'arcsin': input 2.0 is outside its domain"):
        cr.arcsin(cr.Value(2.0))


@given(
    shape=st.sampled_from([(4,), (2, 3), (2, 3, 2)]),
    dtype=DTYPES,
    keepdims=st.booleans(),
    zeros=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_prod_matches_torch_including_zeros(shape, dtype, keepdims, zeros, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    if zeros:
        x.flat[rng.integers(0, x.size, 2)] = 0.0  # one or two zeros
    axis = len(shape) - 1
    compare(lambda t: cr.prod(t, axis, keepdims), lambda t: t.prod(axis, keepdims), x.astype(dtype))
    compare(lambda t: cr.prod(t), lambda t: t.prod(), x.astype(dtype))


@given(
    shape=st.sampled_from([(5,), (3, 4), (2, 3, 2)]),
    ddof=st.sampled_from([0, 1]),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_var_std_cumsum_cumprod_match_torch(shape, ddof, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    axis = len(shape) - 1
    compare(lambda t: cr.var(t, axis, ddof), lambda t: t.var(axis, correction=ddof), x)
    compare(lambda t: cr.std(t, None, ddof), lambda t: t.std(correction=ddof), x)
    compare(lambda t: cr.cumsum(t, axis), lambda t: t.cumsum(axis), x)
    compare(lambda t: cr.cumprod(t, 0), lambda t: t.cumprod(0), x)
    compare(lambda t: cr.cumsum(t), lambda t: t.flatten().cumsum(0), x)


def test_stats_second_derivatives():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, (3, 4))
    compare_second_order(lambda t: cr.prod(t, 1), lambda t: t.prod(1), x)
    compare_second_order(lambda t: cr.var(t, 0, 1), lambda t: t.var(0), x)
    compare_second_order(lambda t: cr.cumprod(t, 1), lambda t: t.cumprod(1), x)
    compare_second_order(lambda t: cr.cumsum(t, 0) ** 2, lambda t: t.cumsum(0) ** 2, x)
    x[1, 2] = x[0, 0] = 0.0  # zeros: the products of the others are exact, to second order
    compare(lambda t: cr.cumprod(t, 1), lambda t: t.cumprod(1), x)
    compare_second_order(lambda t: cr.prod(t, 1), lambda t: t.prod(1), x)
    compare_second_order(lambda t: cr.cumprod(t, 1), lambda t: t.cumprod(1), x)
    compare_second_order(lambda t: cr.prod(t, (0, 1)), lambda t: t.prod(), x)


@pytest.mark.parametrize(
    "spec,shapes,torch_spec",
    [
        ("ij,jk->ik", [(2, 3), (3, 4)], None),
        ("ij,jk", [(2, 3), (3, 4)], "ij,jk->ik"),
        ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)], None),
        ("ij->j", [(3, 4)], None),
        ("i,j,k->ijk", [(2,), (3,), (2,)], None),
        ("ij,ij->", [(2, 3), (2, 3)], None),
        ("ijk,k->j", [(2, 3, 4), (4,)], None),
    ],
)
def test_einsum_matches_torch(spec, shapes, torch_spec):
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in shapes]
    compare(
        lambda *t: cr.einsum(spec, *t), lambda *t: torch.einsum(torch_spec or spec, *t), *arrays
    )
    compare_second_order(
        lambda *t: cr.einsum(spec, *t) ** 2,
        lambda *t: torch.einsum(torch_spec or spec, *t) ** 2,
        *arrays,
    )


def test_contractions_match_torch():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 3, 2))
    compare(
        lambda x, y: cr.tensordot(x, y, ([1, 2], [1, 0])),
        lambda x, y: torch.tensordot(x, y, ([1, 2], [1, 0])),
        a,
        b,
    )
    compare(lambda x, y: cr.tensordot(x, y, 1), lambda x, y: torch.tensordot(x, y, 1), a, b)
    u, v = rng.standard_normal(3), rng.standard_normal(4)
    compare(cr.outer, torch.outer, u, v)
    m = rng.standard_normal((3, 4))
    compare(lambda t: t.trace(), torch.trace, m)
    compare(lambda t: cr.diagonal(t, 1), lambda t: torch.diagonal(t, 1), m)
    compare(lambda t: cr.diagonal(t, -1, 1, 2), lambda t: torch.diagonal(t, -1, 1, 2), a)
    for ord, axis in [(None, None), (2, 1), (1, 0), (np.inf, 1)]:
        compare(
            lambda t, ord=ord, axis=axis: cr.norm(t, ord, axis),
            lambda t, ord=ord, axis=axis: (
                torch.linalg.norm(t) if axis is None else torch.linalg.norm(t, ord, axis)
            ),
            m,
        )


def test_rearranging_functions_match_torch():
    rng = np.random.default_rng(6)
    m = rng.standard_normal((3, 4))
    cases = [
        (lambda t: cr.tril(t, 1), lambda t: torch.tril(t, 1)),
        (lambda t: cr.triu(t, -1), lambda t: torch.triu(t, -1)),
        (lambda t: cr.flip(t, 1), lambda t: torch.flip(t, (1,))),
        (lambda t: cr.flip(t), lambda t: torch.flip(t, (0, 1))),
        (lambda t: cr.roll(t, 2, 1), lambda t: torch.roll(t, 2, 1)),
        (lambda t: cr.roll(t, -5), lambda t: torch.roll(t, -5)),
        (lambda t: cr.repeat(t, 2, 0), lambda t: torch.repeat_interleave(t, 2, 0)),
        (
            lambda t: cr.repeat(t, [1, 0, 2, 1], 1),
            lambda t: torch.repeat_interleave(t, torch.tensor([1, 0, 2, 1]), 1),
        ),
        (lambda t: cr.tile(t, (2, 1, 3)), lambda t: t.repeat(2, 1, 3)),
        (lambda t: cr.moveaxis(t, 0, -1), lambda t: torch.movedim(t, 0, -1)),
    ]
    for ours, theirs in cases:
        compare(ours, theirs, m)
    assert np.array_equal(cr.argmax(cr.tensor(m), axis=1), m.argmax(axis=1))
    assert np.array_equal(cr.argmin(m), m.argmin())


def test_numpy_functions_on_tensors_record_gates():
    x = np.random.default_rng(7).standard_normal((3, 4))
    t = cr.tensor(x, requires_grad=True)
    out = (
        np.sum(np.exp(t) * np.arange(4.0), axis=0).sum()
        + np.var(t, ddof=1)
        + np.linalg.norm(t)
        + np.max(np.cumsum(t, axis=1))
        + np.add.reduce(np.sin(t), axis=1).sum()
        + np.einsum("ij,ij->", t, t)
        + np.trace(np.dot(t, np.transpose(t)))
    )
    assert isinstance(out, cr.Tensor)
    out.backward()
    tt = torch.tensor(x, requires_grad=True)
    (
        (tt.exp() * torch.arange(4.0, dtype=torch.float64)).sum(0).sum()
        + tt.var()
        + torch.linalg.norm(tt)
        + tt.cumsum(1).max()
        + tt.sin().sum(1).sum()
        + (tt * tt).sum()
        + torch.trace(tt @ tt.T)
    ).backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10)
    assert np.shape(t) == (3, 4) and np.argmax(t) == x.argmax()
    assert isinstance(np.ones(4) * t[0], cr.Tensor)  # the reflected operator, as before
    assert np.isfinite(t).all() and (t > 0).dtype == bool
    zeros = np.zeros_like(t)
    assert type(zeros) is np.ndarray and zeros.shape == (3, 4)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda t: np.sort(t), "np.sort has no chainrule gate"),
        (lambda t: np.fft.fft(t), "np.fft.fft has no chainrule gate"),
        (lambda t: np.exp(t, out=np.empty((2, 2))), "out= cannot write"),
        (lambda t: np.sum(t, dtype=np.float32), "dtype= is not supported"),
        (lambda t: np.bitwise_and(t, t), "np.bitwise_and has no chainrule gate"),
        (lambda t: np.add.accumulate(t), "np.add.accumulate has no chainrule gate"),
        (lambda t: cr.einsum("ii->i", t), "diagonal"),
        (lambda t: cr.einsum("...i->i", t), "ellipsis"),
        (lambda t: cr.einsum("ijk->i", t), "do not fit"),
        (lambda t: cr.norm(t, 3), "not supported"),
        (lambda t: cr.var(t[0], ddof=2), "degrees of freedom"),
        (lambda t: cr.tril(t[0]), "at least 2-D"),
    ],
)
def test_what_has_no_gate_is_refused_by_name(call, message):
    t = cr.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises((TypeError, cr.GateError), match=message):
        call(t)
