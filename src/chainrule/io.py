"""Saving and loading state dicts as ``.npz`` archives of plain arrays.

Loading never runs code: archives are read with ``allow_pickle=False`` and every array is read
in full before anything is returned, so a corrupted or truncated file raises
:class:`CheckpointError` and nothing has been changed. Saving writes a temporary file next to the
target and renames it, so an interrupted save leaves any previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["CheckpointError", "load", "save"]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read as a state dict (corrupted, truncated, wrong format)."""


def _as_array(key: Any, value: Any) -> np.ndarray:
    if not isinstance(key, str) or not key:
        raise TypeError(f"save: state dict keys must be non-empty strings, got {key!r}")
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "fiub":
        raise TypeError(
            f"save: entry {key!r} has dtype {array.dtype}; only numeric arrays can be saved"
        )
    return array


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state_dict`` (names to arrays or tensors) to ``path`` as an uncompressed .npz."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"save: expected a mapping of names to arrays, got {type(state_dict).__name__}"
        )
    arrays = {key: _as_array(key, value) for key, value in state_dict.items()}
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".chainrule-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a state dict written by :func:`save` (or ``np.savez``); never unpickles."""
    target = os.fspath(path)
    if not os.path.isfile(target):
        raise FileNotFoundError(f"load: no checkpoint file at {target!r}")
    try:
        archive = np.load(target, allow_pickle=False)
    except _READ_ERRORS as err:
        raise _unreadable(target, err) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"load: {target!r} holds a single array, not an .npz archive")
    try:
        with archive:
            return {key: np.array(archive[key]) for key in archive.files}
    except _READ_ERRORS as err:
        raise _unreadable(target, err) from None


_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _unreadable(target: str, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"load: {target!r} is not a readable .npz checkpoint ({type(err).__name__}: {err})"
    )
