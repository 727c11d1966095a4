"""cr.distributed: one process in place (a job of one rank), and two ranks through mpiexec.

The two-rank runs use the mpiexec of the ``mpich`` wheel (``chainrule[mpi]``, installed by
``make test``); they run two ranks on whatever cores there are (MPICH oversubscribes) and are
bounded by timeouts, so a hung rank fails the test instead of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="cr.distributed needs mpi4py: pip install 'chainrule[mpi]'")

import chainrule as cr  # noqa: E402
from chainrule import data, nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import distributed_worker as worker  # noqa: E402

dist = cr.distributed
WORKER = str(Path(__file__).parent / "distributed_worker.py")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "distributed_training.py"


def test_mpi4py_runs_on_the_mpich_wheel():
    from mpi4py import MPI

    assert MPI.Get_library_version().startswith("MPICH")
    assert dist.mpiexec() is not None


def test_one_process_is_a_job_of_one_rank():
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    a = np.array([1.0, 2.0])
    assert dist.all_reduce(a) is a and a.tolist() == [1.0, 2.0]
    assert dist.all_reduce(3, op="max") == 3
    assert dist.broadcast(2.5) == 2.5
    dist.barrier()


def test_one_rank_batches_are_the_plain_batches():
    x, y = worker.dataset()
    mine = list(dist.batches(x, y, 10, seed=3))
    plain = list(data.batches(x, y, 10, seed=3))
    assert len(mine) == len(plain)
    for (xa, ya), (xb, yb) in zip(mine, plain):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_data_parallel_keeps_pytorchs_keys_and_runs_the_module():
    net = worker.build(0)
    model = dist.DataParallel(net)
    assert list(model.state_dict()) == ["module." + k for k in net.state_dict()]
    x, _ = worker.dataset()
    np.testing.assert_array_equal(model(x).data, net(x).data)
    loss = model(x).sum()
    loss.backward()
    grads = [p.grad.copy() for p in net.parameters()]
    model.allreduce_gradients()  # one rank: the mean of one gradient is itself
    for p, g in zip(net.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


def test_seed_dropout_keeps_the_model_its_mode_and_its_rates():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Dropout(0.3), nn.Linear(4, 2, seed=1))
    model.eval()
    before = model.state_dict()
    dist.seed_dropout(model, seed=5)
    assert isinstance(model[1], nn.Dropout) and model[1].p == 0.3 and not model[1].training
    assert model.state_dict().keys() == before.keys()
    model.train()
    first = model[1](cr.tensor(np.ones(100))).data
    dist.seed_dropout(model, seed=5)
    np.testing.assert_array_equal(model[1](cr.tensor(np.ones(100))).data, first)  # seeded


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dist.all_reduce(np.ones(3), op="avg"), "op must be one of"),
        (lambda: dist.all_reduce(np.ones((3, 4))[:, 1]), "C-contiguous"),
        (lambda: dist.all_reduce(np.arange(3), op="mean"), "needs a floating array"),
        (lambda: dist.all_reduce([1.0, 2.0]), "expected an ndarray"),
        (lambda: dist.broadcast(np.ones(2), src=1), "src must be a rank in 0..0"),
        (lambda: dist.DataParallel(np.ones(2)), "expected a cr.nn.Module"),
        (lambda: list(dist.batches(np.ones((3, 2)), np.ones(2), 2)), "same number of rows"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_a_missing_mpiexec_names_the_extra(monkeypatch):
    monkeypatch.setattr(dist, "mpiexec", lambda: None)
    with pytest.raises(ImportError, match=r"mpiexec .*chainrule\[mpi\]"):
        dist.launch_command(2, ["python"])


def _mpiexec(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    command, env = dist.launch_command(2, [sys.executable, *args])
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(command)}` did not end within {timeout} s (a rank hung)")


def _reference() -> dict:
    """One process, batch 2B, the same shuffles: what two ranks of batch B must reproduce."""
    model = worker.build(seed=0)  # rank 0's model, which the broadcast gives every rank
    x, y = worker.dataset()
    rng = np.random.default_rng(worker.SEED)
    for _ in range(worker.EPOCHS):
        worker.train_steps(model, list(data.batches(x, y, 2 * worker.BATCH, generator=rng)))
    return model.state_dict()


def test_two_ranks_of_batch_b_train_like_one_process_of_batch_2b(tmp_path):
    done = _mpiexec([WORKER, "train", str(tmp_path)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    reference = _reference()
    for key, expected in reference.items():
        # every rank takes the same step from the same averaged gradient: bit-identical models
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
        np.testing.assert_allclose(ranks[0][key], expected, rtol=1e-12, atol=0)
    # shards: disjoint, together the whole epoch
    x, _ = worker.dataset()
    per_epoch = len(x)
    for epoch in range(worker.EPOCHS):
        cut = slice(epoch * per_epoch // 2, (epoch + 1) * per_epoch // 2)
        both = np.concatenate([ranks[0]["seen"][cut], ranks[1]["seen"][cut]])
        np.testing.assert_array_equal(np.sort(both), np.sort(x[:, 0]))
    # the has-a-gradient flags, the collectives and per-rank seeds
    for r in ranks:
        assert int(r["ranks"]) == 2
        np.testing.assert_array_equal(r["used"], np.full(3, 1.0))  # (0 + 2) / 2
        assert bool(r["unused_is_none"])
        assert r["total"].tolist() == [3.0] and float(r["biggest"]) == 1.0
        assert r["from_one"].tolist() == [10.0, 1.0]
    assert ranks[0]["seed"] != ranks[1]["seed"]
    assert not np.array_equal(ranks[0]["mask"], ranks[1]["mask"])
    # batch means (1, 2) and (11, 12): momentum 0.1 from 0, averaged over the two ranks
    for r in ranks:
        np.testing.assert_allclose(r["running_mean"], [0.6, 0.7], rtol=1e-12)


def test_a_failing_rank_ends_every_rank_with_its_message():
    done = _mpiexec([WORKER, "fail"], timeout=60)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "ValueError: rank 1 exploded on purpose" in output
    assert "rank 1 of 2 failed; aborting all" in output


def test_the_example_trains_on_two_ranks():
    done = _mpiexec([str(EXAMPLE)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 ranks)" in done.stdout and "training accuracy" in done.stdout
    assert done.stdout.count("training accuracy") == 1  # only rank 0 reports


def test_a_launcher_that_disagrees_with_mpi_is_refused(monkeypatch):
    code = (
        "import chainrule as cr\n"
        "try:\n    cr.distributed.init()\n"
        "except cr.distributed.DistributedError as err:\n    print(err)\n"
    )
    env = {**os.environ, "PMI_SIZE": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert "started 3 processes (PMI_SIZE) but MPI sees a job of 1" in done.stdout, done.stderr


def test_one_machine_launches_set_mpich_and_thread_defaults_the_user_can_override(monkeypatch):
    monkeypatch.setenv("FI_PROVIDER", "shm")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    command, env = dist.launch_command(4, ["python", "x.py"])
    assert command[1:] == ["-n", "4", "python", "x.py"]
    assert env["HYDRA_LAUNCHER"] == "fork" and env["MPIR_CVAR_CH4_NETMOD"] == "ofi"
    assert env["FI_PROVIDER"] == "shm"  # the user's choice wins
    assert env["OPENBLAS_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 4))


# --- chainrule train --workers / --distributed ------------------------------------------------


def _train_argv(out: Path) -> list[str]:
    return ["train", "--hidden", "16", "--epochs", "20", "--batch-size", "60", "--out", str(out)]


def test_train_on_two_workers_gives_the_one_process_model(tmp_path, capsys):
    from chainrule.cli import main

    assert main(_train_argv(tmp_path / "one")) == 0
    capsys.readouterr()
    argv = [sys.executable, "-m", "chainrule", *_train_argv(tmp_path / "two"), "--workers", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 ranks (MPI), batch 30 on each" in done.stdout
    assert done.stdout.count("train accuracy") == 1  # rank 0 alone reports
    one, two = cr.load(tmp_path / "one" / "model.npz"), cr.load(tmp_path / "two" / "model.npz")
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-12, atol=1e-15)


def test_a_failing_rank_ends_a_train_run_with_its_one_line_message(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = [sys.executable, "-m", "chainrule", *_train_argv(blocker), "--workers", "2"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("a rank hung after rank 0 failed")
    assert done.returncode == 2
    assert "chainrule train: cannot write to output folder" in done.stderr
    assert "(rank 0 of 2; ending every rank)" in done.stderr
    assert "Traceback" not in done.stderr


def test_train_workers_without_mpiexec_names_the_extra(monkeypatch, tmp_path, capsys):
    from chainrule.cli import main

    monkeypatch.setattr(dist, "mpiexec", lambda: None)
    assert main([*_train_argv(tmp_path), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule train: --workers: running on several ranks needs mpiexec")
    assert "pip install 'chainrule[mpi]'" in err and err.count("\n") == 1


def test_train_distributed_without_mpi4py_names_the_extra(monkeypatch, tmp_path, capsys):
    from chainrule.cli import main

    def missing():
        raise ImportError(f"cr.distributed needs mpi4py and MPI ({dist.EXTRA}): no mpi4py")

    monkeypatch.setattr(dist, "_world", [])
    monkeypatch.setattr(dist, "_mpi", missing)
    assert main([*_train_argv(tmp_path), "--distributed"]) == 2
    err = capsys.readouterr().err
    assert "chainrule train: --distributed: cr.distributed needs mpi4py" in err
    assert "pip install 'chainrule[mpi]'" in err
