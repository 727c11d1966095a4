"""Datasets and the mini-batch iterator: shapes, seeding, coverage and bad input."""

import numpy as np
import pytest

import chainrule as cr


def test_spiral_shapes_labels_and_geometry():
    x, y = cr.data.spiral(100, 3, seed=0)
    assert x.shape == (300, 2) and x.dtype == np.float64
    assert y.dtype == np.int64 and np.array_equal(np.bincount(y), [100, 100, 100])
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius[:100], np.linspace(0, 1, 100), atol=1e-12)
    x2, _ = cr.data.spiral(100, 3, seed=0)
    assert np.array_equal(x, x2)
    assert not np.array_equal(x, cr.data.spiral(100, 3, seed=1)[0])
    assert cr.data.spiral(5, 4, seed=0)[0].shape == (20, 2)


@pytest.mark.parametrize(
    "args,message", [((0, 3), "n_per_class"), ((10, 0), "classes"), ((2.5, 3), "n_per_class")]
)
def test_spiral_bad_sizes(args, message):
    with pytest.raises(ValueError, match=f"spiral: {message} must be an integer"):
        cr.data.spiral(*args)


def test_digits_split_is_seeded_disjoint_and_complete():
    split = cr.data.digits(seed=0)
    assert split.x_train.shape == (1438, 64) and split.x_test.shape == (359, 64)
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert set(np.unique(split.y_test)) == set(range(10))
    again = cr.data.digits(seed=0)
    assert np.array_equal(split.x_test, again.x_test)
    other = cr.data.digits(seed=1)
    assert not np.array_equal(split.y_test, other.y_test)
    from sklearn.datasets import load_digits

    labels = np.concatenate([split.y_train, split.y_test])
    assert np.array_equal(np.bincount(labels), np.bincount(load_digits().target))
    assert cr.data.digits(test_fraction=0.5).x_test.shape[0] == 898
    with pytest.raises(ValueError, match="test_fraction must be in"):
        cr.data.digits(test_fraction=1.0)


def test_batches_cover_every_row_once_in_a_seeded_order():
    x = np.arange(10.0).reshape(10, 1)
    y = np.arange(10)
    parts = list(cr.data.batches(x, y, 4, seed=0))
    assert [len(b) for b, _ in parts] == [4, 4, 2]
    rows = np.concatenate([b for _, b in parts])
    assert sorted(rows) == list(range(10)) and list(rows) != list(range(10))
    assert all(np.array_equal(bx[:, 0], by) for bx, by in parts)  # rows stay paired
    again = np.concatenate([b for _, b in cr.data.batches(x, y, 4, seed=0)])
    assert np.array_equal(rows, again)
    plain = np.concatenate([b for _, b in cr.data.batches(x, y, 4, shuffle=False)])
    assert list(plain) == list(range(10))
    assert [len(b) for b, _ in cr.data.batches(x, y, 4, seed=0, drop_last=True)] == [4, 4]


def test_batches_with_a_shared_generator_differ_between_epochs():
    x, y = np.arange(8.0), np.arange(8)
    gen = np.random.default_rng(0)
    first = np.concatenate([b for _, b in cr.data.batches(x, y, 8, generator=gen)])
    second = np.concatenate([b for _, b in cr.data.batches(x, y, 8, generator=gen)])
    assert not np.array_equal(first, second)


def test_batches_bad_input_is_refused_at_the_call():
    with pytest.raises(ValueError, match="same number of rows"):
        cr.data.batches(np.ones((3, 2)), np.ones(4), 2)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        cr.data.batches(np.ones(3), np.ones(3), 0)
    with pytest.raises(ValueError, match="either seed or generator"):
        cr.data.batches(np.ones(3), np.ones(3), 1, seed=0, generator=np.random.default_rng())
