"""Data-parallel training over MPI (mpi4py), the optional extra ``chainrule[mpi]``.

Every rank (process) holds the whole model. Rank 0's parameters are broadcast at the start; each
epoch every rank draws the same shuffle and takes its own disjoint shard of it; after backward
the gradients are averaged with one in-place ``Allreduce`` over a single flat buffer, so every
rank takes the same optimizer step. Two ranks with batch B thus follow one rank with batch 2B.
Communication is mpi4py's buffer interface (uppercase methods, no pickling); MPI itself comes
from the ``mpich`` wheel, whose ``mpiexec`` lands in the virtual environment::

    mpiexec -n 4 python train.py        # or: chainrule train --workers 4

Rank and world size come from the MPI environment (:func:`init`, called on first use). Once a
job has more than one rank, an exception that escapes on any rank prints its traceback and
aborts every rank (``python -m mpi4py`` semantics), so no rank is left waiting in a collective.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .data import _iterate, _order
from .nn.layers import Dropout
from .nn.module import Module, Parameter
from .tensor import Tensor
from .train import Callback, Trainer

__all__ = [
    "DataParallel",
    "DataParallelCallback",
    "DistributedError",
    "all_reduce",
    "allreduce_gradients",
    "barrier",
    "batches",
    "broadcast",
    "broadcast_parameters",
    "get_rank",
    "get_world_size",
    "init",
    "is_available",
    "mpiexec",
    "rank_seed",
    "seed_dropout",
]

EXTRA = "pip install 'chainrule[mpi]'"
_OPS = ("sum", "mean", "max", "min", "prod")
# Variables an MPI launcher sets to the job's size: a different MPI's mpiexec than the library
# mpi4py loaded starts N singletons of size 1 instead of one job (each would train alone).
_LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_world: list = []


class DistributedError(RuntimeError):
    """The MPI job is not what data-parallel training needs (mismatched ranks or launcher)."""


def is_available() -> bool:
    """Whether mpi4py is installed (``chainrule[mpi]``)."""
    return importlib.util.find_spec("mpi4py") is not None


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError(f"cr.distributed needs mpi4py and MPI ({EXTRA}): {err}") from None
    return MPI


def init() -> None:
    """Join the MPI job this process was started in (``mpiexec -n N ...``); a process started
    without mpiexec is a job of one rank. Safe to call again. With more than one rank, an uncaught
    exception on any rank aborts them all."""
    if _world:
        return
    comm = _mpi().COMM_WORLD
    size = comm.Get_size()
    for var in _LAUNCHER_SIZES:
        launched = os.environ.get(var, "")
        if launched.isdigit() and int(launched) != size:
            raise DistributedError(
                f"cr.distributed: the launcher started {launched} processes ({var}) but MPI sees "
                f"a job of {size}: mpiexec and mpi4py use different MPI libraries; run the "
                f"mpiexec that {EXTRA} installs ({mpiexec() or 'not found'})"
            )
    _world.append(comm)
    if size > 1:
        _abort_on_uncaught(comm)


def _comm() -> Any:
    init()
    return _world[0]


def _abort_on_uncaught(comm: Any) -> None:
    """Chain an excepthook that, after the traceback, aborts every rank of the job."""
    previous = sys.excepthook

    def hook(kind: type, value: BaseException, tb: Any) -> None:
        previous(kind, value, tb)
        print(
            f"cr.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed; aborting all",
            file=sys.stderr,
            flush=True,
        )
        _let_output_drain()
        comm.Abort(130 if issubclass(kind, KeyboardInterrupt) else 1)

    sys.excepthook = hook


def _let_output_drain() -> None:
    """Give mpiexec's output forwarding a moment to deliver what this rank just printed (its
    traceback, the reason) before the abort kills every rank: under load it was seen to drop the
    last lines otherwise."""
    time.sleep(0.25)


def end_together(code: int, message: str = "") -> int:
    """Return the exit ``code`` of this rank's work; when it is non-zero in a job of several
    ranks, print ``message`` (one line, with the rank) and end every rank with that code, since
    the others may be waiting in a collective this rank will never reach. An uncaught exception
    needs no call: it aborts the job by itself (see :func:`init`)."""
    comm = _comm()
    if code and comm.Get_size() > 1:
        where = f"rank {comm.Get_rank()} of {comm.Get_size()}"
        print(
            f"{message or 'exit status ' + str(code)} ({where}; ending every rank)",
            file=sys.stderr,
            flush=True,
        )
        _let_output_drain()
        comm.Abort(code)
    return code


def get_rank() -> int:
    """This process's rank, from 0 to the world size minus 1 (rank 0 prints and saves)."""
    return _comm().Get_rank()


def get_world_size() -> int:
    """The number of ranks in the job."""
    return _comm().Get_size()


def barrier() -> None:
    """Wait until every rank has reached this call."""
    _comm().Barrier()


def _buffer(value: Any, fn: str) -> np.ndarray:
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{fn}: expected an ndarray, a Tensor or a number, got {type(value)}")
    if array.dtype.kind not in "biuf" or not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(
            f"{fn}: the array (shape {array.shape}, dtype {array.dtype}) must be a writeable, "
            "C-contiguous array of numbers to be reduced in place"
        )
    return array


def all_reduce(value: Any, op: str = "sum") -> Any:
    """Combine ``value`` over all ranks with ``op`` (sum, mean, max, min, prod): an ndarray or
    Tensor in place (returned); a Python number returns the result. Every rank must call it
    with the same shape and dtype."""
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        array = np.array(value, dtype=np.float64 if op == "mean" else None)
        return all_reduce(array, op).item()
    array = _buffer(value, "all_reduce")
    if op == "mean" and array.dtype.kind != "f":
        raise ValueError(f"all_reduce: op='mean' needs a floating array, got {array.dtype}")
    MPI = _mpi()
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "prod": MPI.PROD}
    comm = _comm()
    comm.Allreduce(MPI.IN_PLACE, array, op=mpi_op[op])
    if op == "mean":
        array /= comm.Get_size()
    return value


def broadcast(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank: an ndarray or Tensor in place (returned); a
    Python number returns rank ``src``'s number."""
    size = get_world_size()
    if not isinstance(src, int) or not 0 <= src < size:
        raise ValueError(f"broadcast: src must be a rank in 0..{size - 1}, got {src!r}")
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return broadcast(np.array(value), src).item()
    _comm().Bcast(_buffer(value, "broadcast"), root=src)
    return value


def _agree(signature: str, what: str) -> None:
    """Raise on every rank unless all ranks hold the same ``signature`` (one small Allreduce)."""
    code = zlib.crc32(signature.encode())
    both = np.array([code, -code], dtype=np.int64)
    all_reduce(both, "max")
    if both[0] != -both[1]:
        raise DistributedError(f"cr.distributed: the ranks hold different {what}")


def broadcast_parameters(module: Module, src: int = 0) -> None:
    """Copy rank ``src``'s state dict (parameters, and buffers where a module has them) into
    ``module`` on every rank: one ``Bcast`` per dtype. The ranks must build the same model."""
    state = module.state_dict()
    _agree(
        ";".join(f"{k}:{v.shape}:{v.dtype.str}" for k, v in state.items()),
        "models (parameter names, shapes or dtypes differ)",
    )
    for dtype in sorted({v.dtype.str for v in state.values()}):
        keys = [k for k, v in state.items() if v.dtype.str == dtype]
        flat = np.concatenate([state[k].ravel() for k in keys])
        broadcast(flat, src)
        start = 0
        for k in keys:
            state[k] = flat[start : start + state[k].size].reshape(state[k].shape)
            start += state[k].size
    module.load_state_dict(state)


def allreduce_gradients(model: Module | Iterable[Parameter]) -> None:
    """Average the ``.grad`` of every parameter over the ranks: one in-place ``Allreduce`` over
    a single flat buffer (the gradients, one has-a-gradient flag per parameter, and a module's
    floating-point buffers). Call it after ``backward`` and before ``optimizer.step()``.

    A parameter without a gradient counts as zeros; one without a gradient on every rank keeps
    ``grad = None``. The result is written as plain arrays (a ``create_graph`` gradient is not
    differentiated through the average). Given a module, its floating buffers (batch-norm
    running statistics, each rank's from its own batches) are averaged in place in the same
    call, so every rank keeps the same model: the mean of the ranks' running means is the
    running mean of the whole batch."""
    params = list(model.parameters() if isinstance(model, Module) else model)
    buffers = []
    if isinstance(model, Module):
        buffers = [b for _, b in model.named_buffers() if b.dtype.kind == "f"]
    comm = _comm()
    ranks = comm.Get_size()
    if ranks == 1 or not params + buffers:
        return
    arrays = [p.data for p in params] + buffers
    dtype = np.result_type(*(a.dtype for a in arrays))
    ends = np.cumsum([a.size for a in arrays])
    total = int(ends[-1])
    flat = np.empty(total + len(params), dtype=dtype)
    for i, (array, end) in enumerate(zip(arrays, ends)):
        part = flat[end - array.size : end]
        if i >= len(params):
            part[...] = array.ravel()
            continue
        grad = params[i].grad
        grad = grad.data if isinstance(grad, Tensor) else grad
        part[...] = 0 if grad is None else grad.ravel()
        flat[total + i] = grad is not None
    comm.Allreduce(_mpi().IN_PLACE, flat)
    flat[:total] /= ranks
    for i, (array, end) in enumerate(zip(arrays, ends)):
        part = flat[end - array.size : end].reshape(array.shape)
        if i >= len(params):
            np.copyto(array, part, casting="unsafe")
        elif flat[total + i]:
            params[i].grad = part.astype(array.dtype, copy=False)


def seed_dropout(model: Module, seed: int) -> None:
    """Give every ``Dropout`` of ``model`` its own random stream on this rank, drawn from
    ``seed`` and the rank (:func:`rank_seed`), so the ranks drop different units as independent
    processes would; with one shared generator every rank would draw the same masks."""
    streams = np.random.SeedSequence([int(seed), get_rank()])
    for _, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Dropout):
                (stream,) = streams.spawn(1)
                fresh = Dropout(child.p, generator=np.random.default_rng(stream))
                parent.add_module(name, fresh.train(child.training))


class DataParallel(Module):
    """Wrap ``module`` for data-parallel training (PyTorch's DistributedDataParallel name
    pattern): rank 0's parameters are broadcast on construction, calls run the wrapped module,
    and :meth:`allreduce_gradients` averages the gradients after backward::

        model = cr.distributed.DataParallel(net)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); model.allreduce_gradients(); opt.step()

    The wrapped module is ``.module`` (so state-dict keys start with ``module.``, as in PyTorch).
    """

    def __init__(self, module: Module, src: int = 0) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a cr.nn.Module, got {type(module).__name__}")
        super().__init__()
        self.module = module
        broadcast_parameters(module, src)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def allreduce_gradients(self) -> None:
        """Average every parameter's gradient over the ranks (see :func:`allreduce_gradients`)."""
        allreduce_gradients(self.module)


class DataParallelCallback(Callback):
    """Make a :class:`cr.train.Trainer` data-parallel over the ranks of the job.

    At the start of ``fit`` rank 0's parameters are broadcast and the trainer's batches become
    :func:`batches` (each rank its shard of the same shuffle; ``batch_size`` is per rank); after
    every backward the gradients are averaged (:func:`allreduce_gradients`); after every epoch
    the epoch's training loss is averaged over the ranks. Only rank 0 writes the checkpoint
    (the others' ``trainer.checkpoint`` becomes None). Put it first among the callbacks, so the
    others see averaged losses, and call :func:`seed_dropout` on a model with dropout::

        trainer = Trainer(model, (x, y), callbacks=[cr.distributed.DataParallelCallback()])
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        broadcast_parameters(trainer.model)
        trainer.batches = batches
        if get_rank() != 0:
            trainer.checkpoint = None

    def on_after_backward(self, trainer: Trainer) -> None:
        allreduce_gradients(trainer.model)

    def on_epoch_end(self, trainer: Trainer) -> None:
        # every rank's shard has the same number of rows: the mean of the means is the mean
        trainer.history["loss"][-1] = all_reduce(trainer.history["loss"][-1], op="mean")


def batches(
    x: Any,
    y: Any,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """This rank's mini-batches of one epoch, as :func:`chainrule.data.batches` but sharded.

    Every rank must draw the same shuffle (the same ``seed``, or a ``generator`` in the same
    state); rank r takes rows r, r + N, r + 2N, ... of it (N ranks), so shards are disjoint and
    equally long (the last ``len(x) % N`` shuffled rows sit the epoch out) and every rank takes
    the same number of steps. Batch k of all ranks together is batch k of one process with
    batch size ``N * batch_size``.
    """
    x, y, order, size = _order(x, y, batch_size, shuffle, seed, generator, "distributed.batches")
    ranks, rank = get_world_size(), get_rank()
    per_rank = len(order) // ranks
    if per_rank == 0:
        raise ValueError(
            f"distributed.batches: {len(order)} rows cannot be shared by {ranks} ranks"
        )
    mine = order[rank : per_rank * ranks : ranks]
    return _iterate(x, y, mine, size, per_rank - per_rank % size if drop_last else per_rank)


def rank_seed(seed: int) -> int:
    """A seed for this rank's own random stream (dropout masks), derived from ``seed`` and the
    rank: pass it to ``Dropout(seed=...)`` or ``cr.nn.init.manual_seed`` after the model's
    parameters are made (they come from rank 0 anyway)."""
    state = np.random.SeedSequence([int(seed), get_rank()]).generate_state(1, np.uint64)
    return int(state[0])


def mpiexec() -> str | None:
    """The ``mpiexec`` next to this Python (the ``mpich`` wheel's), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def launch_command(ranks: int, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start ``argv`` (a Python command) on ``ranks``
    ranks of this machine; raises ImportError naming the extra when mpiexec or mpi4py is
    missing."""
    runner = mpiexec()
    if runner is None or not is_available():
        missing = " and ".join(
            name
            for name, absent in (("mpiexec", runner is None), ("mpi4py", not is_available()))
            if absent
        )
        raise ImportError(f"running on several ranks needs {missing} ({EXTRA})")
    return [runner, "-n", str(ranks), *argv], {**_ONE_MACHINE, **os.environ, **_threads(ranks)}


# Settings for ranks on one machine, where the user has not set them. Hydra starts the ranks with
# fork (no ssh/rsh, which a container may lack). Ranks talk through MPICH's shared memory; its
# network module is OFI over TCP loopback rather than UCX, whose shared-memory pools fail to
# start in containers with a small /dev/shm (Docker's default is 64 MB); both measured the same
# here (2-rank Allreduce of 15 MB: 2.4-4.6 ms vs 2.7-7.8 ms). An Open MPI mpiexec is told it may
# run more ranks than cores, as MPICH does.
_ONE_MACHINE = {
    "HYDRA_LAUNCHER": "fork",
    "MPIR_CVAR_CH4_NETMOD": "ofi",
    "FI_PROVIDER": "tcp",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}


def _threads(ranks: int) -> dict[str, str]:
    """BLAS/OpenMP threads per rank, so that the ranks share the cores instead of each taking
    all of them (a variable the user set wins)."""
    share = str(max(1, (os.cpu_count() or 1) // ranks))
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return {name: os.environ.get(name, share) for name in names}
