"""Shape gates (reshape transpose broadcast_to/expand squeeze unsqueeze concatenate stack split and
indexing: basic, integer arrays, boolean masks, repeated indices that accumulate): values and
gradients against PyTorch, float32/float64, second derivatives, gradcheck and errors that name the
gate, the shape and the axis."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle import arrays, compare, compare_second_order, distinct, dtypes, shapes

import chainrule as cr


@given(shape=shapes(), dtype=dtypes(), data=st.data())
def test_reshape_and_flatten(shape, dtype, data):
    x = data.draw(arrays(dtype, shape))
    n = x.size
    compare(lambda t: t.reshape(-1), lambda t: t.reshape(-1), x)
    compare(lambda t: t.reshape(1, n, 1), lambda t: t.reshape(1, n, 1), x)
    compare(lambda t: cr.reshape(t, (n,)), lambda t: t.reshape((n,)), x)


@given(shape=shapes(), dtype=dtypes(), data=st.data())
def test_transpose_any_permutation(shape, dtype, data):
    x = data.draw(arrays(dtype, shape))
    axes = data.draw(st.permutations(range(len(shape))))
    compare(lambda t: t.transpose(axes), lambda t: t.permute(tuple(axes)), x)
    compare(
        lambda t: t.transpose(*axes) if axes else t.transpose(), lambda t: t.permute(tuple(axes)), x
    )
    compare(lambda t: t.T, lambda t: t.permute(tuple(reversed(range(t.ndim)))), x)
    if len(shape) >= 2:
        compare(lambda t: t.swapaxes(0, -1), lambda t: t.swapaxes(0, -1), x)


@given(data=st.data(), dtype=dtypes())
def test_broadcast_to_and_expand(data, dtype):
    target = data.draw(shapes(min_dims=1))
    kept = data.draw(st.integers(0, len(target)))  # trailing axes the small shape has
    small = tuple(n if data.draw(st.booleans()) else 1 for n in target[len(target) - kept :])
    x = data.draw(arrays(dtype, small))
    compare(lambda t: t.broadcast_to(target), lambda t: t.expand(*target), x)
    compare(lambda t: cr.broadcast_to(t, target), lambda t: t.expand(*target), x)
    compare(lambda t: t.expand(*target), lambda t: t.expand(*target), x)
    compare(lambda t: t.expand(target), lambda t: t.expand(*target), x)


@given(shape=shapes(max_dims=4, max_side=2), dtype=dtypes(), data=st.data())
def test_squeeze_and_unsqueeze(shape, dtype, data):
    x = data.draw(arrays(dtype, shape))
    compare(lambda t: t.squeeze(), lambda t: t.squeeze(), x)
    ones = [i for i, n in enumerate(shape) if n == 1]
    if ones:
        compare(lambda t: t.squeeze(ones[0]), lambda t: t.squeeze(ones[0]), x)
        compare(lambda t: cr.squeeze(t, tuple(ones)), lambda t: t.squeeze(tuple(ones)), x)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    compare(lambda t: t.unsqueeze(axis), lambda t: t.unsqueeze(axis), x)
    compare(lambda t: cr.expand_dims(t, axis), lambda t: t.unsqueeze(axis), x)


@given(shape=shapes(min_dims=1), dtype=dtypes(), data=st.data())
def test_concatenate_and_stack(shape, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    other = list(shape)
    other[axis] = data.draw(st.integers(1, 3))
    a, b = data.draw(arrays(dtype, shape)), data.draw(arrays(dtype, tuple(other)))
    compare(
        lambda x, y: cr.concatenate([x, y, x], axis), lambda x, y: torch.cat([x, y, x], axis), a, b
    )
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    c = data.draw(arrays(dtype, shape))
    compare(
        lambda x, y: cr.stack([x, y, x], new_axis),
        lambda x, y: torch.stack([x, y, x], new_axis),
        a,
        c,
    )
    # a NumPy array among the pieces is a constant
    compare(
        lambda x: cr.concatenate([x, b], axis),
        lambda x: torch.cat([x, torch.from_numpy(b)], axis),
        a,
    )


@given(shape=shapes(min_dims=1), dtype=dtypes(), data=st.data())
def test_split_into_sections_and_at_indices(shape, dtype, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    x = data.draw(arrays(dtype, shape))
    n = shape[axis]

    def weighted(pieces):
        return sum(((p * (i + 1)).sum() for i, p in enumerate(pieces)), start=0 * pieces[0].sum())

    compare(
        lambda t: weighted(t.split(n, axis=axis)),
        lambda t: weighted(torch.split(t, 1, dim=axis)),
        x,
    )
    cut = data.draw(st.integers(0, n))
    compare(
        lambda t: weighted(cr.split(t, [cut], axis)),
        lambda t: weighted(torch.split(t, [cut, n - cut], dim=axis)),
        x,
    )


# --- indexing ------------------------------------------------------------------------------------
BASIC = [
    (1,),
    (-1,),
    (slice(None), 0),
    (slice(1, None),),
    (slice(None, None, 2), slice(None, None, -1)),
    (Ellipsis, 1),
    (None, 0, slice(None)),
    (0, 1),
]


@pytest.mark.parametrize("index", BASIC, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_basic_indexing(index, dtype, rng):
    x = rng.standard_normal((3, 4)).astype(dtype)
    if any(isinstance(i, slice) and i.step == -1 for i in index):
        # torch has no negative steps: flip instead
        compare(lambda t: t[index], lambda t: t[::2].flip(1), x)
        return
    compare(lambda t: t[index], lambda t: t[index], x)


ADVANCED = [
    [0, 0, 2, 0],
    np.array([[1, 1], [2, -1]]),
    (np.array([0, 0, 2]), np.array([1, 1, 3])),
    (slice(None), [3, 3, 0]),
    ([1, 1], slice(1, 3)),
]


@pytest.mark.parametrize("index", ADVANCED, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_advanced_indexing_accumulates_repeated_indices(index, dtype, rng):
    x = rng.standard_normal((3, 4)).astype(dtype)

    def theirs(t):
        items = index if isinstance(index, tuple) else (index,)
        return t[
            tuple(torch.as_tensor(np.asarray(i)) if not isinstance(i, slice) else i for i in items)
        ]

    compare(lambda t: t[index], theirs, x)


@given(shape=shapes(min_dims=1), dtype=dtypes(), data=st.data())
def test_random_integer_indices_with_repeats(shape, dtype, data):
    x = data.draw(arrays(dtype, shape))
    n = shape[0]
    rows = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)))
    compare(lambda t: t[rows], lambda t: t[torch.as_tensor(rows)], x)
    if len(shape) >= 2:
        m = shape[1]
        cols = np.asarray(
            data.draw(st.lists(st.integers(-m, m - 1), min_size=len(rows), max_size=len(rows)))
        )
        compare(
            lambda t: t[rows, cols], lambda t: t[torch.as_tensor(rows), torch.as_tensor(cols)], x
        )
        compare(lambda t: t[1:, cols], lambda t: t[1:, torch.as_tensor(cols)], x)


def test_repeated_index_adds_its_gradients():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 0, 2]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [6.0, 0.0, 4.0])


@given(shape=shapes(min_dims=1), dtype=dtypes(), data=st.data())
def test_boolean_masks(shape, dtype, data):
    x = data.draw(arrays(dtype, shape))
    mask = data.draw(hnp.arrays(bool, shape))
    tmask = torch.from_numpy(mask)
    compare(lambda t: t[mask], lambda t: t[tmask], x)
    compare(lambda t: t[t > 0], lambda t: t[t > 0], x)
    row = data.draw(hnp.arrays(bool, shape[:1]))
    compare(lambda t: t[row], lambda t: t[torch.from_numpy(row)], x)


def test_indexing_with_a_tensor_index():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    i = cr.tensor([2, 2])
    x[i].sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 2.0])


def test_iterating_a_tensor_gives_differentiable_rows():
    x = cr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    total = None
    for k, row in enumerate(x):
        total = row.sum() * k if total is None else total + row.sum() * k
    total.backward()
    np.testing.assert_array_equal(x.grad, [[0, 0], [1, 1], [2, 2]])


SHAPE_OPS = {
    "reshape": (lambda t: t.reshape(2, 6) * t.reshape(2, 6), lambda t: t.reshape(2, 6) ** 2),
    "transpose": (lambda t: t.T * t.T.exp(), lambda t: t.T * t.T.exp()),
    "expand": (lambda t: t[:1].expand(3, 4) * t, lambda t: t[:1].expand(3, 4) * t),
    "squeeze": (lambda t: t[None].squeeze(0) ** 3, lambda t: t[None].squeeze(0) ** 3),
    "unsqueeze": (lambda t: t.unsqueeze(1) ** 3, lambda t: t.unsqueeze(1) ** 3),
    "concatenate": (lambda t: cr.concatenate([t, t * t], 1), lambda t: torch.cat([t, t * t], 1)),
    "stack": (lambda t: cr.stack([t, t * t], 0), lambda t: torch.stack([t, t * t], 0)),
    "split": (
        lambda t: t.split(2, axis=1)[1] * t.split(2, axis=1)[0],
        lambda t: t.split(2, dim=1)[1] * t.split(2, dim=1)[0],
    ),
    "getitem": (lambda t: t[[0, 0, 2], 1:] ** 2, lambda t: t[[0, 0, 2], 1:] ** 2),
    "mask": (
        lambda t: t[np.array([True, False, True])] ** 2,
        lambda t: t[torch.tensor([True, False, True])] ** 2,
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_second_derivatives_and_gradcheck(name, rng):
    mine, theirs = SHAPE_OPS[name]
    x = distinct(rng, (3, 4))
    compare_second_order(mine, theirs, x)
    assert cr.gradcheck(mine, x)


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index,message",
    [
        (5, r"gate 'getitem'.*index 5 is out of bounds for axis 0 with size 3.*shape \(3, 4\)"),
        ((0, 7), r"gate 'getitem'.*index 7 is out of bounds for axis 1 with size 4"),
        ((slice(None), [0, 4]), r"gate 'getitem'.*index 4 is out of bounds for axis 1"),
        (np.array([True, False]), r"gate 'getitem'.*boolean index.*axis 0"),
        ((0, 0, 0), r"gate 'getitem'.*too many indices.*shape \(3, 4\)"),
        (np.array([0.5]), r"gate 'getitem'.*integer or boolean.*float64"),
    ],
)
def test_bad_index_names_the_gate_and_axis(index, message):
    x = cr.tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(cr.GateError, match=message):
        x[index]


def test_shape_errors_name_the_gate_and_shapes():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    cases = [
        (lambda: x.reshape(4, 2), r"gate 'reshape'.*\(2, 3\) into shape \(4, 2\)"),
        (lambda: x.reshape(-1, -1), r"gate 'reshape'.*only one dimension can be -1"),
        (lambda: x.transpose(0, 0), r"gate 'transpose'.*not a permutation"),
        (lambda: x.expand(3, 3), r"gate 'broadcast_to'.*\(2, 3\) to \(3, 3\)"),
        (lambda: x.squeeze(0), r"gate 'squeeze'.*axis 0 has length 2"),
        (lambda: x.unsqueeze(4), r"gate 'expand_dims'.*axis 4 is out of range"),
        (lambda: x.split(2, axis=1), r"gate 'split'.*length 3.*2 equal parts"),
        (lambda: x.split(2, axis=2), r"gate 'split'.*axis 2 is out of range"),
        (lambda: cr.concatenate([x, cr.zeros(3, 3)], 1), r"gate 'concatenate'.*\(2, 3\), \(3, 3\)"),
        (lambda: cr.concatenate([x, x], 5), r"gate 'concatenate'.*axis 5"),
        (lambda: cr.concatenate([]), r"gate 'concatenate'.*at least one"),
        (lambda: cr.stack([x, cr.zeros(3, 3)]), r"gate 'stack'.*same shape.*\(2, 3\), \(3, 3\)"),
        (lambda: cr.stack([]), r"gate 'stack'.*at least one"),
        (lambda: x.swapaxes(0, 3), r"gate 'swapaxes'.*axis 3"),
    ]
    for make, message in cases:
        with pytest.raises(cr.GateError, match=message):
            make()


def test_tensors_are_immutable():
    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 2.0
