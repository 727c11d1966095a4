"""``chainrule train``: train a two-layer ReLU network on the spiral or digits data from the
command line, with a progress bar, a final report, a loss/accuracy plot and a checkpoint.

The model is ``Linear(D, hidden) -> ReLU -> Linear(hidden, classes)`` trained on softmax
cross-entropy plus the CS231n L2 penalty 0.5 * reg * Σ‖W‖² on the weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

# Per-dataset defaults, chosen so that a bare `chainrule train --data X` trains to the accuracy
# the README quotes: the spiral as in the CS231n case study (full batch, lr 1), digits in
# mini-batches.
DEFAULTS = {
    "spiral": {"epochs": 2000, "batch_size": 0, "lr": {"sgd": 1.0, "adam": 1e-2}},
    "digits": {"epochs": 30, "batch_size": 32, "lr": {"sgd": 0.1, "adam": 1e-3}},
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _float_at_least(minimum: float, strict: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not np.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"> {minimum}" if strict else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text}")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a 2-layer ReLU network on spiral or digits data",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--data", choices=sorted(DEFAULTS), default="spiral", help="dataset (default: spiral)"
    )
    parser.add_argument(
        "--hidden", type=_positive_int, default=100, help="hidden units (default: 100)"
    )
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="passes over the training set (default: spiral 2000, digits 30)",
    )
    parser.add_argument(
        "--batch-size",
        type=_non_negative_int,
        default=None,
        help="mini-batch size, 0 for full batch (default: spiral 0, digits 32)",
    )
    parser.add_argument(
        "--lr",
        type=_float_at_least(0.0, strict=True),
        default=None,
        help="learning rate (default: sgd 1.0/0.1, adam 1e-2/1e-3 for spiral/digits)",
    )
    parser.add_argument(
        "--optim", choices=("sgd", "adam"), default="sgd", help="optimizer (default: sgd)"
    )
    parser.add_argument(
        "--momentum",
        type=_float_at_least(0.0, strict=False),
        default=0.0,
        help="SGD momentum (default: 0)",
    )
    parser.add_argument(
        "--reg",
        type=_float_at_least(0.0, strict=False),
        default=1e-3,
        help="L2 strength on the weights (default: 1e-3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for data, weights and batches")
    parser.add_argument(
        "--out",
        default="out/train",
        help="folder for training.png and model.npz (default: out/train)",
    )
    parser.set_defaults(run=run)


def _load(name: str, seed: int) -> tuple:
    from .. import data

    if name == "spiral":
        x, y = data.spiral(100, 3, seed=seed)
        return x, y, None, None
    split = data.digits(seed=seed)
    return split.x_train, split.y_train, split.x_test, split.y_test


def _evaluate(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from .. import no_grad
    from ..nn import functional as F

    with no_grad():
        scores = model(x)
        loss = F.cross_entropy(scores, y).item()
    return loss, float(np.mean(scores.data.argmax(axis=1) == y))


def _plot(history: dict, path: str, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history["loss"], label="training loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (data + L2)")
    ax_loss.set_yscale("log")
    ax_acc.plot(epochs, history["train_acc"], label="train")
    if history["test_acc"]:
        ax_acc.plot(epochs, history["test_acc"], label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run(args: argparse.Namespace) -> int:
    """Train, report, plot and save; returns the exit code (2 for unusable input)."""
    try:
        import matplotlib  # noqa: F401 - the plot needs it; fail before training, not after
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Table
    except ImportError:
        print(
            "chainrule train: needs rich and matplotlib (pip install 'chainrule[viz]')",
            file=sys.stderr,
        )
        return 2
    from .. import data, nn, optim, save
    from ..nn import functional as F

    defaults = DEFAULTS[args.data]
    epochs = args.epochs or defaults["epochs"]
    lr = args.lr if args.lr is not None else defaults["lr"][args.optim]
    batch_size = defaults["batch_size"] if args.batch_size is None else args.batch_size
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        print(f"chainrule train: cannot create output folder {args.out!r}: {err}", file=sys.stderr)
        return 2
    try:
        x, y, x_test, y_test = _load(args.data, args.seed)
    except ImportError as err:
        print(f"chainrule train: {err}", file=sys.stderr)
        return 2

    classes = int(y.max()) + 1
    rng = np.random.default_rng(args.seed)
    model = nn.Sequential(
        nn.Linear(x.shape[1], args.hidden, generator=rng),
        nn.ReLU(),
        nn.Linear(args.hidden, classes, generator=rng),
    )
    weights = [model[0].weight, model[2].weight]
    if args.optim == "sgd":
        opt = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum)
    else:
        opt = optim.Adam(model.parameters(), lr=lr)
    size = batch_size or len(x)

    history: dict[str, list] = {"loss": [], "train_acc": [], "test_acc": []}
    console = Console()
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:6.1%}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"train {args.data}", total=epochs, loss=float("nan"), acc=0.0)
        for _ in range(epochs):
            total, count = 0.0, 0
            for xb, yb in data.batches(x, y, size, generator=rng):
                loss = F.cross_entropy(model(xb), yb)
                if args.reg:
                    loss = loss + F.l2_penalty(weights, args.reg)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(yb)
                count += len(yb)
            history["loss"].append(total / count)
            history["train_acc"].append(_evaluate(model, x, y)[1])
            if x_test is not None:
                history["test_acc"].append(_evaluate(model, x_test, y_test)[1])
            progress.update(task, advance=1, loss=history["loss"][-1], acc=history["train_acc"][-1])
    seconds = time.perf_counter() - start

    checkpoint = os.path.join(args.out, "model.npz")
    plot = os.path.join(args.out, "training.png")
    save(model.state_dict(), checkpoint)
    _plot(
        history,
        plot,
        f"{args.data}: {x.shape[1]}-{args.hidden}-{classes} ReLU net, {args.optim} lr {lr:g}",
    )

    table = Table(title=f"chainrule train --data {args.data}", show_header=False)
    table.add_row(
        "model",
        f"{x.shape[1]}-{args.hidden}-{classes} ReLU MLP, "
        f"{sum(p.size for p in model.parameters())} parameters",
    )
    table.add_row(
        "training",
        f"{epochs} epochs, batch {size}, {args.optim} lr {lr:g}, "
        f"reg {args.reg:g}, seed {args.seed}",
    )
    table.add_row("final loss", f"{history['loss'][-1]:.4f}")
    table.add_row("train accuracy", f"{history['train_acc'][-1]:.1%} ({len(y)} samples)")
    if history["test_acc"]:
        table.add_row("test accuracy", f"{history['test_acc'][-1]:.1%} ({len(y_test)} samples)")
    table.add_row("time", f"{seconds:.2f} s")
    table.add_row("plot", plot)
    table.add_row("checkpoint", checkpoint)
    console.print(table)
    return 0
