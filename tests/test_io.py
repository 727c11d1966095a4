"""save/load: round trips, PyTorch-compatible keys, atomic writes, and every unreadable file
giving a CheckpointError (or a state-dict error) with the model left unchanged."""

import os
import zipfile

import numpy as np
import pytest
import torch

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
