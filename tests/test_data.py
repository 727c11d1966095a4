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


def test_digits_as_images_are_the_same_samples():
    flat, images = cr.data.digits(seed=3), cr.data.digits(seed=3, images=True)
    assert images.x_train.shape == (len(flat.x_train), 1, 8, 8)
    np.testing.assert_array_equal(images.x_train.reshape(len(flat.x_train), 64), flat.x_train)
    np.testing.assert_array_equal(images.y_test, flat.y_test)


def _write_cifar(folder, n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1)
    records.tofile(folder)
    return labels, pixels


def test_cifar10_reads_the_binary_format(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    written = [_write_cifar(folder / f"data_batch_{i}.bin", 3, i) for i in range(1, 6)]
    test_labels, test_pixels = _write_cifar(folder / "test_batch.bin", 2, 9)
    for path in (folder, tmp_path):  # the folder itself or the one holding it
        split = cr.data.cifar10(path)
        assert split.x_train.shape == (15, 3, 32, 32) and split.x_train.dtype == np.float32
        np.testing.assert_array_equal(split.y_train, np.concatenate([y for y, _ in written]))
        np.testing.assert_allclose(split.x_train[3:6] * 255, written[1][1], atol=1e-4)
        np.testing.assert_array_equal(split.y_test, test_labels)
        np.testing.assert_allclose(split.x_test * 255, test_pixels, atol=1e-4)
    assert cr.data.cifar10(folder, dtype=np.float64).x_test.dtype == np.float64


def test_cifar10_names_missing_files_and_bad_sizes(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks data_batch_1.bin.*test_batch.bin"):
        cr.data.cifar10(tmp_path)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (tmp_path / name).write_bytes(b"\x00" * 3073)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a whole number of 3073-byte records"):
        cr.data.cifar10(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(b"\x0c" + b"\x00" * 3072)
    with pytest.raises(ValueError, match="label 12"):
        cr.data.cifar10(tmp_path)
