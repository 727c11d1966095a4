"""Saving and loading state dicts as ``.npz`` archives of plain arrays.

The archive is a zip of ``.npy`` members, one per key (``<key>.npy``), whose zip comments record
the keys verbatim and in order (the manifest; the archive's comment marks the format). So any
string is a key (``file``, ``allow_pickle``, ``w`` beside ``w.npy``), and ``np.load`` and PyTorch
users still see nothing but the arrays.

Saving writes a temporary file next to the target (through a symlink: next to the file it points
to), flushes and fsyncs it, gives it the permissions a plain ``open`` would (0666 less the umask,
or the mode of the file it replaces), and renames it over the target; any error removes the
temporary file and leaves the previous checkpoint intact.

Loading never runs code and never trusts the file: no pickles; only stored or deflated, unencrypted
members; the sizes the archive declares are checked against ``max_bytes`` (and, above 64 MiB,
against 100 times the file's own size) and every ``.npy`` header against its member's size before
anything is allocated; every array is read in full before anything is returned. Every unreadable
file raises :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from .tensor import Tensor

__all__ = ["MAX_BYTES", "CheckpointError", "load", "save"]

FORMAT = b"chainrule.state_dict 1"  # the archive's comment; each member's comment is its key
MAX_BYTES = 1 << 32  # 4 GiB: the default cap on what an archive may declare, uncompressed
# Above 64 MiB, an archive may declare at most MAX_RATIO times its own size: deflate can reach
# ~1000x only on near-constant data, so a small file claiming gigabytes is a zip bomb, not weights.
MAX_RATIO, RATIO_FLOOR = 100, 1 << 26
_NPY_MAGIC = b"\x93NUMPY"


class CheckpointError(ValueError):
    """A checkpoint file cannot be read as a state dict (corrupted, truncated, wrong format, or
    declaring more data than allowed)."""


def _as_array(key: Any, value: Any) -> np.ndarray:
    if not isinstance(key, str) or not key:
        raise TypeError(f"save: state dict keys must be non-empty strings, got {key!r}")
    if "\0" in key or not _utf8(key):
        raise ValueError(f"save: key {key!r} cannot be stored in an archive (NUL or invalid text)")
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "fiub":
        raise TypeError(
            f"save: entry {key!r} has dtype {array.dtype}; only numeric arrays can be saved"
        )
    return array


def _utf8(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state_dict`` (names to arrays or tensors) to ``path`` as an uncompressed .npz."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"save: expected a mapping of names to arrays, got {type(state_dict).__name__}"
        )
    arrays = {key: _as_array(key, value) for key, value in state_dict.items()}
    target = os.path.realpath(os.fspath(path))  # through a symlink, never replacing it
    fd, tmp = tempfile.mkstemp(prefix=".chainrule-", suffix=".npz", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _mode_for(target))
            _write_archive(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.remove(tmp)
        raise
    _sync_folder(os.path.dirname(target))


def _write_archive(f: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.comment = FORMAT
        for key, array in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.comment = key.encode("utf-8")  # the key verbatim: the manifest
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _mode_for(target: str) -> int:
    """The mode ``open(target, 'wb')`` would leave: the old file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder: str) -> None:
    """Make the rename durable; a file system that cannot fsync a folder is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
    """Read a state dict written by :func:`save` (or ``np.savez``); never unpickles.

    Archives declaring more than ``max_bytes`` of uncompressed data, or more than 64 MiB at over
    100 times the file's size (a zip bomb), are refused before anything is read. Any unreadable
    file raises :class:`CheckpointError`."""
    target = os.fspath(path)
    if not os.path.isfile(target):
        raise FileNotFoundError(f"load: no checkpoint file at {target!r}")
    try:
        with open(target, "rb") as f:
            if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                raise CheckpointError(f"load: {target!r} holds a single array, not an .npz archive")
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                return _read_archive(archive, target, max_bytes)
    except CheckpointError:
        raise
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        RuntimeError,
        NotImplementedError,
        MemoryError,
        OverflowError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
    ) as err:
        raise CheckpointError(
            f"load: {target!r} is not a readable .npz checkpoint ({type(err).__name__}: {err})"
        ) from None


def _read_archive(archive: zipfile.ZipFile, target: str, max_bytes: int) -> dict[str, np.ndarray]:
    infos = {info.filename: info for info in archive.infolist()}

    def refuse(reason: str) -> CheckpointError:
        return CheckpointError(f"load: {target!r} is not a readable .npz checkpoint ({reason})")

    declared = sum(info.file_size for info in infos.values())
    if declared > max_bytes:
        raise CheckpointError(
            f"load: {target!r} declares {declared} bytes of data, more than the limit of "
            f"{max_bytes} (pass max_bytes= to load larger checkpoints)"
        )
    stored = os.path.getsize(target)
    if declared > RATIO_FLOOR and declared > MAX_RATIO * stored:
        raise CheckpointError(
            f"load: {target!r} declares {declared} bytes of data in a file of {stored} bytes "
            f"(more than {MAX_RATIO}x, as a zip bomb does); not read"
        )
    for name, info in infos.items():
        if info.flag_bits & 0x1:
            raise refuse(f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(f"member {name!r} uses compression method {info.compress_type}")
    keys = _keys(archive, infos, refuse)
    return {key: _read_member(archive, infos[key + ".npy"], key, refuse) for key in keys}


def _keys(archive: zipfile.ZipFile, infos: dict, refuse: Any) -> list[str]:
    """The keys in order: from the members' comments (chainrule), else NumPy's naming."""
    if archive.comment != FORMAT:
        odd = [name for name in infos if not name.endswith(".npy")]
        if odd:
            raise refuse(f"member {odd[0]!r} is not an array")
        return [name[:-4] for name in infos]
    try:
        keys = [info.comment.decode("utf-8") for info in infos.values()]
    except UnicodeDecodeError:
        keys = []
    if len(set(keys)) != len(infos) or any(
        k + ".npy" != n for k, n in zip(keys, infos, strict=True)
    ):
        raise refuse("its members do not match their recorded keys")
    return keys


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, refuse: Any):
    """One ``.npy`` member, its header checked against the member's size before allocating."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise refuse(f"entry {key!r} has .npy version {version}")
        if dtype.hasobject:
            raise refuse(
                f"entry {key!r} holds Python objects; Object arrays cannot be loaded without "
                "unpickling, which chainrule never does"
            )
        if dtype.kind not in "fiub":
            raise refuse(f"entry {key!r} has dtype {dtype}, not a number type")
        count = 1
        for n in shape:
            count *= n
        nbytes = count * dtype.itemsize
        header = f.tell()
        if header + nbytes != info.file_size:
            raise refuse(
                f"entry {key!r} claims shape {shape} of {dtype} ({nbytes} bytes) but holds "
                f"{info.file_size - header}"
            )
        array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        view = memoryview(array.reshape(-1, order="A").view(np.uint8))
        filled = 0
        while filled < nbytes:
            got = f.readinto(view[filled:])
            if not got:
                raise refuse(f"entry {key!r} is truncated")
            filled += got
        if f.read(1):
            raise refuse(f"entry {key!r} has data after its array")
    return array
