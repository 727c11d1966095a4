"""``chainrule train``: train the course's networks on the spiral or digits data from the
command line with :class:`chainrule.train.Trainer`: a progress bar, a final report, a
loss/accuracy plot, a checkpoint per epoch that ``--resume`` continues, and the model.

The model is the course's fully connected net ``--model mlp`` (default: ``Linear(D, hidden) ->
[BatchNorm1d | LayerNorm] -> ReLU -> [Dropout] -> Linear(hidden, classes)``, with ``--norm`` and
``--dropout``) or its three-layer convnet ``--model convnet`` (conv - relu - 2x2 max pool -
affine - relu - affine, on the digits as 1x8x8 images), trained on softmax cross-entropy plus the
CS231n L2 penalty 0.5 * reg * Σ‖W‖² on the weights.

Each step's forward and backward run as staged NumPy code (:func:`chainrule.jit`) unless
``--no-jit``; the report says how many steps ran staged, and ``--show-staged`` prints the code.

Nothing is lost: the output folder is checked before training; Ctrl-C keeps the last finished
epoch in the checkpoint (exit 130); a diverging run stops at once with a message (exit 1) and
leaves the last good checkpoint as it was.

To extend it, add options in :func:`register` and read them in :func:`build_model` (the model),
:func:`callbacks` (hooks into the loop) or :func:`build_trainer`; every option is stored in the
checkpoint, so ``--resume`` rebuilds the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from ..engine import AnomalyError, detect_anomaly
from ..train import Callback
from . import CommandError, diagnose, float_in, int_at_least, writable_folder

# Per-dataset defaults, chosen so that a bare `chainrule train --data X` trains to the accuracy
# the README quotes: the spiral as in the CS231n case study (full batch, lr 1, every point used
# for training), digits in mini-batches with a tenth of the training set held out for validation.
DEFAULTS = {
    "spiral": {
        "epochs": 2000,
        "batch_size": 0,
        "val_split": 0.0,
        "checkpoint_every": 100,
        "lr": {"sgd": 1.0, "adam": 1e-2},
    },
    "digits": {
        "epochs": 30,
        "batch_size": 32,
        "val_split": 0.1,
        "checkpoint_every": 5,
        "lr": {"sgd": 0.1, "adam": 1e-3},
    },
}
# Defaults of the convnet on digits (override the dataset's): SGD with momentum on every training
# sample reaches about 98.6% test accuracy in 10 epochs (tests/test_train_models.py checks >= 98%).
MODEL_DEFAULTS = {
    "convnet": {
        "epochs": 10,
        "val_split": 0.0,
        "momentum": 0.9,
        "reg": 1e-4,
        "lr": {"sgd": 0.05, "rmsprop": 1e-3, "adam": 1e-3},
    },
}
BASE_DEFAULTS = {"momentum": 0.0, "reg": 1e-3}
# Options that are about this invocation, not the run: never restored by --resume.
INVOCATION = (
    "out",
    "resume",
    "run",
    "command",
    "epochs",
    "argv",
    "distributed",
    "workers",
    "jit",
    "show_staged",
    *diagnose.OPTIONS,
)
# A run may plan to use at most this fraction of the machine's memory.
MEMORY_FRACTION = 0.5


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train the course's fully connected net or convnet on spiral or digits data",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--data", choices=sorted(DEFAULTS), default="spiral", help="dataset (default: spiral)"
    )
    parser.add_argument(
        "--model",
        choices=("mlp", "convnet"),
        default="mlp",
        help="fully connected net or three-layer convnet (digits only) (default: mlp)",
    )
    parser.add_argument(
        "--hidden", type=int_at_least(1), default=100, help="hidden units (default: 100)"
    )
    parser.add_argument(
        "--norm",
        choices=("none", "batchnorm", "layernorm"),
        default="none",
        help="mlp: normalization after the hidden affine layer (default: none)",
    )
    parser.add_argument(
        "--dropout",
        type=float_in(0.0, 1.0),
        default=0.0,
        help="mlp: probability of dropping a hidden unit while training (default: 0)",
    )
    parser.add_argument(
        "--filters", type=int_at_least(1), default=32, help="convnet: filters (default: 32)"
    )
    parser.add_argument(
        "--filter-size",
        type=int_at_least(1),
        default=3,
        help="convnet: odd filter size, padded to keep the image size (default: 3)",
    )
    parser.add_argument(
        "--epochs",
        type=int_at_least(1),
        default=None,
        help="passes over the training set, in all (default: spiral 2000, digits 30)",
    )
    parser.add_argument(
        "--batch-size",
        type=int_at_least(0),
        default=None,
        help="mini-batch size, 0 for full batch (default: spiral 0, digits 32)",
    )
    parser.add_argument(
        "--lr",
        type=float_in(0.0, strict=True),
        default=None,
        help="learning rate (default: sgd 1.0/0.1, adam 1e-2/1e-3 for spiral/digits)",
    )
    parser.add_argument(
        "--lr-decay",
        type=float_in(0.0, strict=True),
        default=1.0,
        help="multiply the learning rate by this after every epoch (default: 1)",
    )
    parser.add_argument(
        "--optim",
        choices=("sgd", "rmsprop", "adam"),
        default="sgd",
        help="optimizer (default: sgd)",
    )
    parser.add_argument(
        "--momentum",
        type=float_in(0.0),
        default=None,
        help="SGD momentum (default: 0; convnet 0.9)",
    )
    parser.add_argument(
        "--reg",
        type=float_in(0.0),
        default=None,
        help="L2 strength on the weights (default: 1e-3; convnet 1e-4)",
    )
    parser.add_argument(
        "--val-split",
        type=float_in(0.0, 1.0),
        default=None,
        help="fraction of the training set held out to pick the best epoch "
        "(default: spiral 0, digits 0.1)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="write the checkpoint every N epochs, after the last one and on Ctrl-C "
        "(default: spiral 100, digits 5)",
    )
    parser.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="seed for data, weights and batches (default: 0)",
    )
    parser.add_argument(
        "--out",
        default="out/train",
        help="folder for training.png, checkpoint.npz and model.npz (default: out/train)",
    )
    parser.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue the run saved in CHECKPOINT (its options are used; --epochs is the total)",
    )
    parser.add_argument(
        "--detect-anomaly",
        action="store_true",
        help="stop at the first gate whose forward or backward produces NaN or inf, naming it, "
        "its inputs and the line that made it (slow: for finding a bug)",
    )
    parser.add_argument(
        "--no-jit",
        dest="jit",
        action="store_false",
        help="run every step eagerly (default: as staged code, cr.jit, from a batch shape's "
        "third step); the same parameters, slower",
    )
    parser.add_argument(
        "--show-staged",
        action="store_true",
        help="print the staged code of the training step (forward and backward pass) once a "
        "step has run it",
    )
    diagnose.add_options(parser)
    parser.add_argument(
        "--workers",
        type=int_at_least(1),
        metavar="N",
        help="train data-parallel on N processes of this machine (starts mpiexec itself; "
        "--batch-size is shared out among them); needs chainrule[mpi]",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="run as one rank of an MPI job (mpiexec -n N chainrule train --distributed ...): "
        "data-parallel, rank 0 reports and saves; needs chainrule[mpi]",
    )
    parser.set_defaults(run=run)


def _load_data(name: str, seed: int, images: bool) -> tuple:
    from .. import data

    if name == "spiral":
        if images:
            raise CommandError("--model convnet needs images: use --data digits")
        x, y = data.spiral(100, 3, seed=seed)
        return x, y, None, None
    split = data.digits(seed=seed, images=images)
    return split.x_train, split.y_train, split.x_test, split.y_test


def parameter_count(args: argparse.Namespace, shape: tuple, classes: int) -> int:
    """The number of parameters of the model :func:`build_model` would build for samples of
    ``shape``."""
    head = args.hidden * classes + classes
    if args.model == "convnet":
        c, h, w = shape
        conv = args.filters * (c * args.filter_size**2 + 1)
        return conv + (args.filters * (h // 2) * (w // 2) + 1) * args.hidden + head
    norm = 2 * args.hidden if args.norm != "none" else 0
    return (int(np.prod(shape)) + 1) * args.hidden + norm + head


def _activations_per_row(args: argparse.Namespace, shape: tuple) -> int:
    if args.model == "convnet":
        return args.filters * shape[1] * shape[2] + args.hidden
    return args.hidden


def build_model(args: argparse.Namespace, shape: tuple, classes: int, rng: np.random.Generator):
    """The network to train for samples of ``shape``, its weights drawn from ``rng``."""
    from .. import nn

    if args.model == "convnet":
        if args.filter_size % 2 == 0:
            raise CommandError(f"--filter-size must be odd, got {args.filter_size}")
        return nn.ThreeLayerConvNet(
            shape, args.filters, args.filter_size, args.hidden, classes, generator=rng
        )
    norm = None if args.norm == "none" else args.norm
    return nn.FullyConnectedNet(
        int(np.prod(shape)), [args.hidden], classes, norm, args.dropout, generator=rng
    )


def describe_model(args: argparse.Namespace, shape: tuple, classes: int) -> str:
    """The model in a few words, for the report and the plot's title."""
    if args.model == "convnet":
        k = args.filter_size
        return f"convnet conv{k}x{k}x{args.filters}-pool-{args.hidden}-{classes}"
    extras = "".join(
        [
            f", {args.norm}" if args.norm != "none" else "",
            f", dropout {args.dropout:g}" if args.dropout else "",
        ]
    )
    return f"{int(np.prod(shape))}-{args.hidden}-{classes} ReLU MLP{extras}"


def callbacks(args: argparse.Namespace) -> list:
    """Hooks into the training loop beyond the progress bar (none by default)."""
    return []


def check_memory(args: argparse.Namespace, shape: tuple, classes: int, rows: int) -> None:
    """Refuse (before allocating) a run whose parameters and activations would not fit.

    Each parameter is held about 6 times (value, gradient, two optimizer buffers, the best and
    the checkpointed copy) and each hidden activation about 4 times per row of a batch."""
    batch = min(args.batch_size or rows, rows)
    params = parameter_count(args, shape, classes)
    estimate = 8 * (6 * params + 4 * batch * _activations_per_row(args, shape))
    available = _physical_memory()
    if available and estimate > MEMORY_FRACTION * available:
        raise CommandError(
            f"this model would need about {_bytes(estimate)} of memory (--hidden {args.hidden}, "
            f"batch {batch}) and this machine has {_bytes(available)}; use a smaller --hidden "
            "or --batch-size"
        )


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _bytes(n: float) -> str:
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    while n >= 1000 and len(units) > 1:
        n /= 1000
        units.pop(0)
    return f"{n:.3g} {units[0]}"


def build_trainer(args: argparse.Namespace, model: Any, data: tuple, rng: np.random.Generator):
    """The :class:`~chainrule.train.Trainer` for this run (its checkpoint in ``args.out``)."""
    from ..train import Trainer

    config: dict[str, Any] = {"lr": args.lr}
    if args.optim == "sgd":
        config["momentum"] = args.momentum
    return Trainer(
        model,
        data,
        optimizer=args.optim,
        optim_config=config,
        reg=args.reg,
        lr_decay=args.lr_decay,
        batch_size=args.batch_size,
        epochs=args.epochs,
        val_split=args.val_split,
        generator=rng,
        checkpoint=os.path.join(args.out, "checkpoint.npz"),
        checkpoint_every=args.checkpoint_every,
        callbacks=callbacks(args),
        meta={"args": _saved_options(args)},
        jit=args.jit,
    )


class ShowStaged(Callback):
    """``--show-staged``: print the staged step once a step has run it (above the progress bar),
    or, when the run ends before any did, the code traced so far."""

    def __init__(self, console: Any) -> None:
        self.console, self.shown = console, False

    def on_batch_end(self, trainer: Any, loss: float) -> None:
        if not self.shown and trainer.jitted.staged_calls:
            self._show(
                f"the training step as cr.jit staged it (running since step {trainer.step}):",
                trainer.jitted.source,
            )

    def on_fit_end(self, trainer: Any) -> None:
        if self.shown:
            return
        try:
            source = trainer.jitted.source
        except RuntimeError:
            self.console.print("--show-staged: no staged code: every step ran eagerly")
            return
        self._show(
            "the training step as cr.jit staged it (no step ran it: a batch shape runs staged "
            "from its third step):",
            source,
        )

    def _show(self, title: str, source: str) -> None:
        self.shown = True
        self.console.print(f"{title}\n{source}", markup=False, highlight=False, soft_wrap=True)


def _check_show_staged(args: argparse.Namespace) -> None:
    """Refuse ``--show-staged`` with an option that makes every step run eagerly."""
    if not args.show_staged or args.sanity:
        return
    eager = [
        flag
        for flag, on in (
            ("--no-jit", not args.jit),
            ("--diagnose", args.diagnose),
            ("--detect-anomaly", args.detect_anomaly),
        )
        if on
    ]
    if eager:
        raise CommandError(
            f"--show-staged: every step runs eagerly with {' and '.join(eager)}, so nothing is "
            "staged to show"
        )


def _jit_words(args: argparse.Namespace, trainer: Any, steps: int) -> str:
    """How the steps of this run ran, for the report."""
    jitted = trainer.jitted
    if jitted is None:
        return "off (--no-jit): every step ran eagerly"
    for flag, why in (
        ("diagnose", "--diagnose watches each step"),
        ("detect_anomaly", "--detect-anomaly checks each gate"),
    ):
        if getattr(args, flag):
            return f"off while {why}: every step ran eagerly"
    eager = f", {jitted.eager_calls} eager" if jitted.eager_calls else ""
    return f"{jitted.staged_calls} of {steps} steps staged ({jitted.traces} traced{eager})"


def _saved_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in INVOCATION and not callable(v)}


def _restore_options(args: argparse.Namespace) -> dict:
    """Replace the run's options by those stored in the ``--resume`` checkpoint; returns it."""
    from ..io import load
    from ..train import read_info

    try:
        state = load(args.resume)
        saved = read_info(state)["meta"].get("args")
    except (OSError, ValueError) as err:
        raise CommandError(f"--resume {args.resume}: {err}") from None
    if not isinstance(saved, dict):
        raise CommandError(f"--resume {args.resume}: not a checkpoint of chainrule train")
    unknown = set(saved) - set(vars(args))
    if unknown:
        raise CommandError(
            f"--resume {args.resume}: written with option(s) this version does not know: "
            + ", ".join(sorted(unknown))
        )
    epochs = args.epochs
    vars(args).update(saved)
    args.epochs = epochs
    return state


def _defaults(args: argparse.Namespace) -> dict:
    """The dataset's defaults, with the model's (if any) taking precedence."""
    return {**BASE_DEFAULTS, **DEFAULTS[args.data], **MODEL_DEFAULTS.get(args.model, {})}


def _fill_defaults(args: argparse.Namespace) -> None:
    defaults = _defaults(args)
    for name in ("batch_size", "val_split", "checkpoint_every", "momentum", "reg"):
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    if args.lr is None:
        args.lr = defaults["lr"][args.optim]


def run(args: argparse.Namespace) -> int:
    """Train, report, plot and save; returns the exit code (2 for unusable input, 1 for a
    diverged run, 130 for Ctrl-C). ``--workers N`` relaunches this command on N ranks."""
    if args.distributed:
        return _run_rank(args)
    if args.workers is not None:
        return _launch(args)
    return _train(args, rank=0, ranks=1)


def _launch(args: argparse.Namespace) -> int:
    """``mpiexec -n N`` this very command line with ``--distributed``; its exit code."""
    from .. import distributed

    argv = [sys.executable, "-m", "chainrule", *args.argv, "--distributed"]
    try:
        command, env = distributed.launch_command(args.workers, argv)
    except ImportError as err:
        raise CommandError(f"--workers: {err}") from None
    return subprocess.call(command, env=env)


def _run_rank(args: argparse.Namespace) -> int:
    """This process's part of a data-parallel run; a failure on any rank ends them all."""
    from .. import distributed

    try:
        distributed.init()
    except (ImportError, distributed.DistributedError) as err:
        raise CommandError(f"--distributed: {err}") from None
    rank, ranks = distributed.get_rank(), distributed.get_world_size()
    try:
        if args.workers is not None and args.workers != ranks:
            raise CommandError(f"--workers {args.workers} but the MPI job has {ranks} rank(s)")
        code = _train(args, rank, ranks)
    except CommandError as err:
        return distributed.end_together(err.code, f"chainrule train: {err}")
    return distributed.end_together(code)


def _train(args: argparse.Namespace, rank: int, ranks: int) -> int:
    """The run, as rank ``rank`` of ``ranks``: rank 0 checks the folder, shows progress,
    reports and saves; every rank trains on its shard of each batch."""
    try:
        import matplotlib  # noqa: F401 - the plot needs it; fail before training, not after
        from rich.console import Console
    except ImportError:
        raise CommandError("needs rich and matplotlib (pip install 'chainrule[viz]')") from None
    from ..io import CheckpointError
    from ..train import DivergenceError, RichProgress

    state = _restore_options(args) if args.resume else None
    _fill_defaults(args)
    _check_show_staged(args)
    out = writable_folder(args.out) if rank == 0 else args.out
    if args.batch_size % ranks:
        raise CommandError(
            f"--batch-size {args.batch_size} cannot be shared out among {ranks} ranks"
        )
    try:
        x, y, x_test, y_test = _load_data(args.data, args.seed, args.model == "convnet")
    except ImportError as err:
        raise CommandError(str(err)) from None
    classes = int(y.max()) + 1
    shape = x.shape[1:]
    check_memory(args, shape, classes, len(x))
    rng = np.random.default_rng(args.seed)
    model = build_model(args, shape, classes, rng)
    if args.epochs is None:
        args.epochs = _defaults(args)["epochs"]
    trainer = build_trainer(args, model, (x, y), rng)
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except CheckpointError as err:
            raise CommandError(f"--resume {args.resume}: {err}") from None
        if trainer.epoch >= trainer.epochs:
            raise CommandError(
                f"--resume {args.resume}: the run already has {trainer.epoch} epochs; "
                f"give --epochs above {trainer.epoch} to train more"
            )
    console = Console()
    if args.sanity:
        return diagnose.sanity(trainer) if rank == 0 else 0
    diag = diagnose.attach(args, trainer) if rank == 0 else None
    title = f"chainrule train --data {args.data}: {describe_model(args, shape, classes)}"
    progress = RichProgress(f"train {args.data}", console=console)
    if rank == 0:
        trainer.callbacks.insert(0, progress)
        if args.show_staged:
            trainer.callbacks.append(ShowStaged(console))
    if ranks > 1:
        from ..distributed import DataParallelCallback, seed_dropout

        seed_dropout(model, args.seed)
        trainer.batch_size = args.batch_size // ranks
        trainer.callbacks.insert(0, DataParallelCallback())
    start, first_step = time.perf_counter(), trainer.step
    try:
        with detect_anomaly() if args.detect_anomaly else contextlib.nullcontext():
            trainer.fit()
    except AnomalyError as err:
        progress.close()
        first, *details = str(err).splitlines()
        print(f"chainrule train: {first}", *details, sep="\n", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.close()
        print(f"chainrule train: interrupted; {_kept(trainer)}", file=sys.stderr)
        return 130
    except DivergenceError as err:
        progress.close()
        print(f"chainrule train: {err}; {_kept(trainer)}", file=sys.stderr)
        diagnose.finish(diag, out, title, sys.stderr)
        return 1
    finally:
        progress.close()
    seconds = time.perf_counter() - start
    if rank == 0:
        steps = trainer.step - first_step
        _report(args, trainer, console, out, seconds, shape, classes, x_test, y_test, ranks, steps)
        diagnose.finish(diag, out, title)
    return 0


def _kept(trainer: Any) -> str:
    """Where the run's last finished epoch is, for the one-line message after a stop."""
    path = trainer.checkpoint
    if path is None:
        return "rank 0 keeps the checkpoint"
    if trainer.saved_epoch is not None:
        epoch = trainer.saved_epoch
        return f"epoch {epoch} is saved in {path} (continue with --resume {path})"
    if os.path.exists(path):
        return f"{path} is unchanged"
    return "no epoch had finished, nothing saved"


def _report(
    args: argparse.Namespace,
    trainer: Any,
    console: Any,
    out: str,
    seconds: float,
    shape: tuple,
    classes: int,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    ranks: int = 1,
    steps: int = 0,
) -> None:
    from rich.table import Table

    from .. import save

    model_path = os.path.join(out, "model.npz")
    plot = os.path.join(out, "training.png")
    save(trainer.model.state_dict(), model_path)
    description = describe_model(args, shape, classes)
    trainer.plot(plot, f"{args.data}: {description}, {args.optim} lr {args.lr:g}")

    history = trainer.history
    table = Table(title=f"chainrule train --data {args.data}", show_header=False)
    table.add_row(
        "model", f"{description}, {sum(p.size for p in trainer.model.parameters())} parameters"
    )
    size = args.batch_size or len(trainer.x_train)
    decay = f", decay {args.lr_decay:g}" if args.lr_decay != 1 else ""
    table.add_row(
        "training",
        f"{trainer.epochs} epochs, batch {size}, {args.optim} lr {args.lr:g}{decay}, "
        f"reg {args.reg:g}, seed {args.seed}",
    )
    if ranks > 1:
        table.add_row("data parallel", f"{ranks} ranks (MPI), batch {size // ranks} on each")
    table.add_row("final loss", f"{history['loss'][-1]:.4f}")
    table.add_row(
        "train accuracy",
        f"{history['train_acc'][-1]:.1%} ({len(trainer.y_train)} samples"
        + (", last epoch)" if trainer.x_val is not None else ")"),
    )
    if trainer.x_val is not None:
        table.add_row(
            "val accuracy",
            f"{trainer.best_val_acc:.1%} best, at epoch {trainer.best_epoch} "
            f"({len(trainer.y_val)} samples; the model keeps that epoch's weights)",
        )
    if x_test is not None:
        accuracy = trainer.evaluate(x_test, y_test)[1]
        table.add_row("test accuracy", f"{accuracy:.1%} ({len(y_test)} samples)")
    table.add_row("jit", _jit_words(args, trainer, steps))
    table.add_row("time", f"{seconds:.2f} s")
    table.add_row("plot", plot)
    table.add_row("checkpoint", f"{trainer.checkpoint} (--resume)")
    table.add_row("weights", model_path)
    console.print(table)
