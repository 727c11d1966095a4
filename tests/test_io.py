"""save/load: round trips, PyTorch-compatible keys, atomic writes, and every unreadable file
giving a CheckpointError (or a state-dict error) with the model left unchanged."""

import os
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import nn
from chainrule.io import CheckpointError


def model(seed=0):
    return nn.Sequential(nn.Linear(3, 4, seed=seed), nn.ReLU(), nn.Linear(4, 2, seed=seed + 1))


def test_round_trip_restores_the_outputs(tmp_path):
    path = tmp_path / "model.npz"
    a, b = model(0), model(5)
    cr.save(a.state_dict(), path)
    state = cr.load(path)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    b.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_saved_file_is_a_plain_npz_torch_can_use(tmp_path):
    path = tmp_path / "model.npz"
    cr.save(model().state_dict(), path)
    with np.load(path, allow_pickle=False) as archive:
        state = {k: torch.from_numpy(archive[k]) for k in archive.files}
    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)
    ).double()
    theirs.load_state_dict(state)


def test_save_keeps_dtypes_accepts_tensors_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "mixed.npz"
    cr.save(
        {
            "a": np.arange(3, dtype=np.int32),
            "b": cr.tensor([1.0], dtype=np.float32),
            "c": np.array(True),
        },
        path,
    )
    state = cr.load(path)
    assert state["a"].dtype == np.int32 and state["b"].dtype == np.float32
    assert os.listdir(tmp_path) == ["mixed.npz"]
    cr.save({"a": np.zeros(1)}, str(path))  # overwrites in place
    assert list(cr.load(path)) == ["a"]


@pytest.mark.parametrize(
    "state,error,message",
    [
        ({"a": np.array(["x"])}, TypeError, "entry 'a' has dtype <U1"),
        ({"a": np.array([{}], dtype=object)}, TypeError, "dtype object"),
        ({1: np.zeros(1)}, TypeError, "keys must be non-empty strings"),
        ([("a", 1)], TypeError, "expected a mapping"),
    ],
)
def test_save_refuses_what_cannot_be_loaded_without_pickle(tmp_path, state, error, message):
    with pytest.raises(error, match=message):
        cr.save(state, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def truncated(path, good):
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])


def garbage(path, good):
    path.write_bytes(b"this is not a checkpoint" * 10)


def single_array(path, good):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def pickled(path, good):
    with open(path, "wb") as f:
        np.savez(f, a=np.array([{"run": "code"}], dtype=object))


def bad_crc(path, good):
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.infolist()[0]
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "spoil,message",
    [
        (truncated, "not a readable .npz checkpoint"),
        (garbage, "not a readable .npz checkpoint"),
        (single_array, "holds a single array, not an .npz archive"),
        (pickled, "Object arrays cannot be loaded"),
        (bad_crc, "not a readable .npz checkpoint"),
    ],
)
def test_unreadable_files_give_a_clear_error_and_change_nothing(tmp_path, spoil, message):
    good = tmp_path / "good.npz"
    cr.save(model(1).state_dict(), good)
    bad = tmp_path / "bad.npz"
    spoil(bad, good)
    m = model()
    before = m.state_dict()
    with pytest.raises(CheckpointError, match=message):
        m.load_state_dict(cr.load(bad))
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())


def test_mismatched_checkpoint_is_refused_and_changes_nothing(tmp_path):
    path = tmp_path / "other.npz"
    cr.save(nn.Sequential(nn.Linear(3, 5, seed=0)).state_dict(), path)
    m = model()
    before = m.state_dict()
    with pytest.raises(nn.StateDictError, match="missing key"):
        m.load_state_dict(cr.load(path))
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        cr.load(tmp_path / "nope.npz")


# --- issue 9 item 12: every key verbatim, file modes, durability, hostile archives ----------------
def test_every_key_comes_back_verbatim_and_in_order(tmp_path):
    keys = ["allow_pickle", "file", "w", "w.npy", "a/../b", "ünïcode key", "arr_0", " "]
    state = {k: np.full(2, i, dtype=np.int64) for i, k in enumerate(keys)}
    cr.save(state, tmp_path / "odd.npz")
    loaded = cr.load(tmp_path / "odd.npz")
    assert list(loaded) == keys
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(loaded[k], [i, i])
    with np.load(tmp_path / "odd.npz", allow_pickle=False) as archive:
        assert all(isinstance(archive[name], np.ndarray) for name in archive.files)


def test_a_key_a_zip_archive_cannot_hold_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot be stored"):
        cr.save({"a\0b": np.zeros(1)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_mode_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        cr.save({"a": np.zeros(1)}, tmp_path / "m.npz")
    finally:
        os.umask(old)
    mode = (tmp_path / "m.npz").stat().st_mode & 0o777
    old = os.umask(umask)
    try:
        np.savez(tmp_path / "numpy.npz", a=np.zeros(1))
        torch.save({"a": torch.zeros(1)}, tmp_path / "torch.pt")
    finally:
        os.umask(old)
    assert mode == 0o666 & ~umask
    assert mode == (tmp_path / "numpy.npz").stat().st_mode & 0o777  # NumPy's own
    assert mode == (tmp_path / "torch.pt").stat().st_mode & 0o777  # PyTorch's own


def test_an_overwritten_file_keeps_its_mode(tmp_path):
    path = tmp_path / "m.npz"
    cr.save({"a": np.zeros(1)}, path)
    path.chmod(0o640)
    cr.save({"a": np.ones(1)}, path)
    assert path.stat().st_mode & 0o777 == 0o640 and cr.load(path)["a"][0] == 1


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), replace(a, b))[1])
    cr.save({"a": np.zeros(3)}, tmp_path / "m.npz")
    assert events[:2] == ["fsync", "rename"]


def test_saving_through_a_symlink_writes_the_file_it_points_to(tmp_path):
    real = tmp_path / "runs" / "real.npz"
    real.parent.mkdir()
    cr.save({"a": np.zeros(1)}, real)
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    cr.save({"a": np.ones(1)}, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert cr.load(real)["a"][0] == 1
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"]
    assert os.listdir(real.parent) == ["real.npz"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_error_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch, error):
    path = tmp_path / "m.npz"
    cr.save({"a": np.zeros(1)}, path)
    good = path.read_bytes()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(np.lib.format, "write_array", fail)
    with pytest.raises(type(error)):
        cr.save({"a": np.ones(1), "b": np.ones(2)}, path)
    assert os.listdir(tmp_path) == ["m.npz"] and path.read_bytes() == good


def _patch_headers(path, offsets_and_values):
    """Set 2-byte fields of every local (PK\\3\\4) and central (PK\\1\\2) header of a zip."""
    data = bytearray(path.read_bytes())
    for signature, offset, value in offsets_and_values:
        start = 0
        while (start := data.find(signature, start)) >= 0:
            old = int.from_bytes(data[start + offset : start + offset + 2], "little")
            data[start + offset : start + offset + 2] = value(old).to_bytes(2, "little")
            start += 4
    path.write_bytes(bytes(data))


def encrypted(path, good):
    path.write_bytes(good.read_bytes())
    _patch_headers(path, [(b"PK\3\4", 6, lambda f: f | 1), (b"PK\1\2", 8, lambda f: f | 1)])


def deflate64(path, good):
    path.write_bytes(good.read_bytes())
    _patch_headers(path, [(b"PK\3\4", 8, lambda c: 9), (b"PK\1\2", 10, lambda c: 9)])


def petabyte_header(path, good):
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**47,)}
    with zipfile.ZipFile(path, "w") as archive, archive.open("w.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(np.zeros(2).tobytes())


def short_data(path, good):
    with zipfile.ZipFile(path, "w") as archive, archive.open("w.npy", "w") as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f8", "fortran_order": False, "shape": (3,)}
        )
        member.write(np.zeros(2).tobytes())


def not_an_array(path, good):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")


def keys_out_of_step(path, good):
    data = bytearray(good.read_bytes())
    at = data.rfind(b"0.weight")  # the last copy: a member comment in the central directory
    data[at : at + 8] = b"9.weight"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "spoil,message",
    [
        (encrypted, "is encrypted"),
        (deflate64, "compression method 9"),
        (petabyte_header, r"claims shape \(140737488355328,\)"),
        (short_data, "claims shape"),
        (not_an_array, "'notes.txt' is not an array"),
        (keys_out_of_step, "do not match their recorded keys"),
    ],
)
def test_hostile_archives_raise_checkpoint_errors(tmp_path, spoil, message):
    good = tmp_path / "good.npz"
    cr.save(model(1).state_dict(), good)
    bad = tmp_path / "bad.npz"
    spoil(bad, good)
    with pytest.raises(CheckpointError, match=message):
        cr.load(bad)


def test_declared_sizes_above_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    with open(path, "wb") as f:
        np.savez_compressed(f, w=np.zeros(2**20))  # 8 MiB of zeros in a ~8 KB file
    assert path.stat().st_size < 100_000
    reads = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: reads.append(a))
    with pytest.raises(CheckpointError, match="declares 8388736 bytes of data, more than"):
        cr.load(path, max_bytes=2**22)
    assert reads == []
    monkeypatch.undo()
    assert cr.load(path)["w"].shape == (2**20,)


def test_a_zip_bomb_is_refused_by_its_ratio_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**24,)}  # 128 MiB of zeros
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            for _ in range(128):
                member.write(chunk)
    assert path.stat().st_size < (1 << 27) // 100
    reads = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: reads.append(a))
    with pytest.raises(CheckpointError, match=r"in a file of \d+ bytes \(more than 100x"):
        cr.load(path)
    assert reads == []


@settings(deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20).filter(lambda k: "\0" not in k),
        st.integers(-5, 5),
        min_size=1,
        max_size=6,
    )
)
def test_any_keys_round_trip_verbatim(tmp_path_factory, state):
    path = tmp_path_factory.mktemp("keys") / "k.npz"
    cr.save({k: np.array([v]) for k, v in state.items()}, path)
    loaded = cr.load(path)
    assert list(loaded) == list(state)
    assert all(int(loaded[k][0]) == v for k, v in state.items())
