"""Small datasets for training demos and a seeded mini-batch iterator.

``spiral`` is the CS231n case study's three-armed spiral (not linearly separable); ``digits`` is
scikit-learn's bundled 8x8 handwritten digits (the optional ``data`` extra), split into train and
test with a seeded permutation, as 64 features or as 1x8x8 images; ``cifar10`` reads CIFAR-10
from a local folder in its binary format. Everything is NumPy arrays: float features, int64
labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Split", "batches", "cifar10", "digits", "spiral"]


class Split(NamedTuple):
    """A dataset split into training and test arrays."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _count(value: object, what: str, fn: str, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{fn}: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def spiral(
    n_per_class: int = 100, classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Points on ``classes`` spiral arms in the plane: X of shape (n_per_class * classes, 2) and
    labels y. Arm k has radius rising from 0 to 1 and angle from 4k to 4(k + 1) radians plus
    N(0, 0.2²) noise, as in the CS231n case study."""
    n = _count(n_per_class, "n_per_class", "spiral")
    k = _count(classes, "classes", "spiral")
    rng = np.random.default_rng(seed)
    x = np.zeros((n * k, 2))
    y = np.zeros(n * k, dtype=np.int64)
    radius = np.linspace(0.0, 1.0, n)
    for arm in range(k):
        angle = np.linspace(4.0 * arm, 4.0 * (arm + 1), n) + rng.standard_normal(n) * 0.2
        rows = slice(n * arm, n * (arm + 1))
        x[rows, 0] = radius * np.sin(angle)
        x[rows, 1] = radius * np.cos(angle)
        y[rows] = arm
    return x, y


def digits(test_fraction: float = 0.2, seed: int = 0, images: bool = False) -> Split:
    """scikit-learn's 1797 8x8 digit images as 64 features scaled to [0, 1], labels 0-9, split
    by a permutation seeded with ``seed`` (``test_fraction`` of the samples go to test). With
    ``images`` the features are (N, 1, 8, 8) images (one channel), as a convnet takes them."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("digits() needs scikit-learn (pip install 'chainrule[data]')") from None
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    if images:
        x = x.reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # a label byte, then the red, green and blue 32x32 planes


def cifar10(path: Any, dtype: Any = np.float32) -> Split:
    """CIFAR-10 from a local folder in its *binary* format (``cifar-10-batches-bin``: the five
    ``data_batch_<i>.bin`` files and ``test_batch.bin``; ``path`` may be that folder or the one
    holding it). Images come as (N, 3, 32, 32) arrays of ``dtype`` scaled to [0, 1], labels as
    int64. Nothing is unpickled: each record is a label byte and 3072 pixel bytes."""
    from pathlib import Path

    folder = Path(path)
    if not (folder / CIFAR10_TEST_FILE).is_file() and (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    expected = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"cifar10: {folder} lacks {', '.join(missing)}; expected the binary version "
            f"(cifar-10-binary.tar.gz, folder cifar-10-batches-bin) with files "
            f"{', '.join(expected)}"
        )
    train = [_cifar10_file(folder / name, dtype) for name in CIFAR10_TRAIN_FILES]
    x_test, y_test = _cifar10_file(folder / CIFAR10_TEST_FILE, dtype)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return Split(x_train, y_train, x_test, y_test)


def _cifar10_file(path: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _CIFAR10_RECORD:
        raise ValueError(
            f"cifar10: {path} has {raw.size} bytes, not a whole number of "
            f"{_CIFAR10_RECORD}-byte records (is it the binary version of CIFAR-10?)"
        )
    records = raw.reshape(-1, _CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"cifar10: {path} has label {int(labels.max())}; CIFAR-10 labels are 0-9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).astype(dtype)
    images *= np.asarray(1.0 / 255.0, dtype=images.dtype)
    return images, labels


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass over (x, y) in mini-batches of ``batch_size`` rows, shuffled by ``generator``
    (or a generator seeded with ``seed``); the last batch may be smaller unless ``drop_last``."""
    x, y, order, size = _order(x, y, batch_size, shuffle, seed, generator, "batches")
    return _iterate(x, y, order, size, len(order) - len(order) % size if drop_last else len(order))


def _order(
    x: Any,
    y: Any,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    generator: np.random.Generator | None,
    fn: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Checked (x, y, row order of one epoch, batch size) for ``fn``'s mini-batches."""
    x, y = np.asarray(x), np.asarray(y)
    size = _count(batch_size, "batch_size", fn)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"{fn}: x of shape {x.shape} and y of shape {y.shape} must have the same number of rows"
        )
    if generator is not None and seed is not None:
        raise ValueError(f"{fn}: give either seed or generator, not both")
    if shuffle:
        rng = generator if generator is not None else np.random.default_rng(seed)
        return x, y, rng.permutation(len(x)), size
    return x, y, np.arange(len(x)), size


def _iterate(
    x: np.ndarray, y: np.ndarray, order: np.ndarray, size: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, stop, size):
        rows = order[start : start + size]
        yield x[rows], y[rows]
