"""A training loop with the CS231n ``Solver``'s semantics and PyTorch Lightning's shape.

:class:`Trainer` takes a classifier (a ``cr.nn`` module mapping (N, D) inputs to (N, C) scores),
its data and an optimizer with its config, and trains for a number of epochs in mini-batches with
a learning rate decayed per epoch. After each epoch it records the mean training loss and the
train and validation accuracies, keeps a copy of the parameters with the best validation accuracy
(restored into the model when training ends, as the course's Solver does), and can write a
checkpoint that :meth:`Trainer.resume` continues exactly where it stopped.

It never loses a run: the state of the last finished epoch is kept in memory, and on Ctrl-C it is
written to the checkpoint before the ``KeyboardInterrupt`` goes on. A diverging run stops at once
with :class:`DivergenceError`, before the bad update touches the parameters and without writing
the checkpoint (the epochs just before a divergence are suspect; the file keeps the last one
written by a healthy interval). Callbacks (:class:`Callback`) see every stage of the loop, which
is how the progress bar and other additions plug in without touching the loop.

With ``jit=True`` each step's forward and backward run as staged NumPy code (:func:`cr.jit`):
the same updates, faster, from a batch shape's third step on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import data as _data
from . import optim as _optim
from .engine import no_grad
from .io import CheckpointError, load, save
from .jit import Jitted
from .nn import functional as F
from .nn.module import Module
from .tensor import Tensor

__all__ = ["Callback", "DivergenceError", "RichProgress", "Trainer"]

OPTIMIZERS = {"sgd": _optim.SGD, "rmsprop": _optim.RMSprop, "adam": _optim.Adam}
FORMAT = 1  # version of the checkpoint layout written by Trainer.state_dict


class DivergenceError(FloatingPointError):
    """The training loss or a gradient became non-finite (or exploded): the run diverged.

    Raised before the optimizer applies the bad step, so the model holds the last finite
    parameters. ``epoch``, ``step`` and ``lr`` say where; the message suggests a lower rate."""

    def __init__(self, message: str, epoch: int, step: int, lr: float) -> None:
        super().__init__(message)
        self.epoch, self.step, self.lr = epoch, step, lr


class Callback:
    """Hooks into :meth:`Trainer.fit`, each a no-op here; override the ones you need.

    ``on_after_backward`` runs after ``loss.backward()`` and before the optimizer step (the place
    to inspect or combine gradients); ``on_batch_end`` receives the batch's loss as a float.
    A callback that watches the step itself (module hooks on the forward, the loss's circuit)
    sets ``eager_steps = True``: a ``jit`` trainer then runs its steps eagerly."""

    #: Whether this callback needs the steps to run eagerly (see the class docstring).
    eager_steps: bool = False

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once, before the first epoch."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Called at the start of every epoch."""

    def on_after_backward(self, trainer: Trainer) -> None:
        """Called after each ``loss.backward()``, before the optimizer step."""

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        """Called after each optimizer step with the batch's loss."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        """Called at the end of every epoch, after validation."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once, when training ends (also after Ctrl-C or divergence)."""


class Trainer:
    """Train ``model`` on ``data`` like the course's Solver.

    - ``data``: ``(x, y)`` arrays, or a mapping with ``x_train``, ``y_train`` and optionally
      ``x_val``, ``y_val``. Without validation arrays, ``val_split`` (a fraction in [0, 1)) of the
      training rows, chosen by ``generator``, is held out for validation.
    - ``optimizer``: ``"sgd"``, ``"rmsprop"``, ``"adam"`` or a ``cr.optim`` optimizer class,
      built over ``model.parameters()`` with ``optim_config`` (e.g. ``{"lr": 0.1}``).
    - ``loss_fn(scores, labels)``: default softmax cross-entropy; ``reg`` adds the notes' L2
      penalty 0.5 * reg * Σ‖W‖² over the parameters named ``*weight`` (not the biases).
    - ``lr_decay``: every group's learning rate is multiplied by it after each epoch.
    - ``batch_size``: rows per step, 0 for the full batch; batches are shuffled by ``generator``
      (a ``np.random.Generator`` or a seed).
    - ``checkpoint``: a path written (atomically) every ``checkpoint_every`` epochs, after the
      last one, and on Ctrl-C; :meth:`resume` reads it. ``meta`` (JSON-able) is stored with it.
    - ``divergence_factor``: stop when a batch loss exceeds this multiple of the run's first one
      (a non-finite loss or gradient always stops); None to check finiteness only.
    - ``jit``: run each step's forward and backward (:meth:`forward_backward`) through
      :func:`cr.jit`, kept as ``jitted`` (its ``source`` is the staged code, ``staged_calls``
      counts the staged steps). The parameters come out as eager steps leave them; the loss, the
      finiteness check, the callbacks and the optimizer step stay outside the staged code. Off by
      default, because staged code repeats only the chainrule computation: a ``loss_fn`` with
      Python side effects (printing, counting, reading values) would see only the traced steps.
      Steps run eagerly while a callback with ``eager_steps`` (``cr.diagnostics``) is attached, in
      anomaly mode, and where jit cannot stage (after one ``cr.JitWarning`` saying why).

    ``batches`` is the function that cuts each epoch into mini-batches (:func:`cr.data.batches`;
    :class:`cr.distributed.DataParallelCallback` puts the rank-sharded one in its place).
    ``saved_epoch`` is the epoch the checkpoint file holds from this trainer (None before it
    first writes one). ``history`` holds per epoch ``loss`` (mean training loss), ``train_acc``,
    ``val_acc`` and ``lr``, plus ``batch_loss`` per step. ``best_val_acc``, ``best_epoch`` and
    ``best_params`` track the best validation epoch (the last epoch without a validation set).
    """

    def __init__(
        self,
        model: Module,
        data: Sequence[Any] | Mapping[str, Any],
        *,
        optimizer: str | type = "sgd",
        optim_config: Mapping[str, Any] | None = None,
        loss_fn: Callable[[Tensor, np.ndarray], Tensor] | None = None,
        reg: float = 0.0,
        lr_decay: float = 1.0,
        batch_size: int = 32,
        epochs: int = 10,
        val_split: float = 0.0,
        generator: np.random.Generator | int | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        divergence_factor: float | None = 1e4,
        callbacks: Iterable[Callback] = (),
        meta: Mapping[str, Any] | None = None,
        jit: bool = False,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be a cr.nn.Module, got {type(model).__name__}")
        self.model = model
        self.rng = (
            generator
            if isinstance(generator, np.random.Generator)
            else np.random.default_rng(generator)
        )
        self.x_train, self.y_train, self.x_val, self.y_val = _split(data, val_split, self.rng)
        self.epochs = _count(epochs, "epochs", 1)
        self.batch_size = _count(batch_size, "batch_size", 0)
        self.checkpoint_every = _count(checkpoint_every, "checkpoint_every", 1)
        if not np.isfinite(reg) or reg < 0:
            raise ValueError(f"Trainer: reg must be a finite number >= 0, got {reg}")
        if not np.isfinite(lr_decay) or lr_decay <= 0:
            raise ValueError(f"Trainer: lr_decay must be a finite number > 0, got {lr_decay}")
        if divergence_factor is not None and not divergence_factor > 1:
            raise ValueError(f"Trainer: divergence_factor must be > 1, got {divergence_factor}")
        self.loss_fn = loss_fn or F.cross_entropy
        self.reg = float(reg)
        self.reg_params = [p for name, p in model.named_parameters() if name.endswith("weight")]
        self.optimizer = _build_optimizer(optimizer, model, optim_config or {})
        self.scheduler = _optim.StepLR(self.optimizer, 1, lr_decay)
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.divergence_factor = divergence_factor
        self.callbacks = list(callbacks)
        self.batches = _data.batches
        self.meta = dict(meta or {})
        #: The staged step (``cr.jit`` of :meth:`forward_backward`), None without ``jit``.
        self.jitted = Jitted(self.forward_backward) if jit else None
        self.epoch = 0  # finished epochs
        self.step = 0  # optimizer steps taken
        self.history: dict[str, list[float]] = {
            "loss": [],
            "train_acc": [],
            "val_acc": [],
            "lr": [],
            "batch_loss": [],
        }
        self.best_val_acc = -1.0
        self.best_epoch = 0
        self._best_params = model.state_dict()  # with a validation set; else the model's own
        self._snapshot: dict[str, Any] | None = None  # last finished epoch, not yet saved
        self.saved_epoch: int | None = None  # the epoch this trainer last wrote to checkpoint

    # --- the loop ---------------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def fit(self) -> Trainer:
        """Train the remaining epochs (all of them, or those after a :meth:`resume`); then load
        the best validation parameters into the model. Returns ``self``."""
        self._emit("on_fit_start")
        try:
            while self.epoch < self.epochs:
                self._run_epoch()
        except KeyboardInterrupt:  # Ctrl-C: the last finished epoch is kept
            self._save_snapshot()
            raise
        self._save_snapshot()
        if self.x_val is not None:
            self.model.load_state_dict(self._best_params)
        self._emit("on_fit_end")
        return self

    def _run_epoch(self) -> None:
        self._emit("on_epoch_start")
        self.model.train()
        size = self.batch_size or len(self.x_train)
        total = count = 0.0
        for xb, yb in self.batches(self.x_train, self.y_train, size, generator=self.rng):
            loss = self.train_step(xb, yb)
            total += loss * len(yb)
            count += len(yb)
            self._emit("on_batch_end", loss)
        self.history["loss"].append(total / count)
        self.history["lr"].append(self.lr)
        self.model.eval()
        self.history["train_acc"].append(self._evaluate(self.x_train, self.y_train)[1])
        if self.x_val is not None:
            self.history["val_acc"].append(self._evaluate(self.x_val, self.y_val)[1])
        self.epoch += 1
        self._keep_best()
        self.scheduler.step()
        self._emit("on_epoch_end")
        if self.checkpoint is not None:
            self._snapshot = self._capture()
            if self.epoch % self.checkpoint_every == 0:
                self._save_snapshot()

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One forward, backward and (if everything is finite) optimizer step; returns the loss.

        The forward and backward are :meth:`forward_backward`, staged with ``jit`` unless a
        callback watches the eager step. NumPy's floating-point warnings are not printed inside
        the step: the trainer checks the loss and every gradient itself and raises
        :class:`DivergenceError` instead."""
        staged = self.jitted is not None and not any(
            getattr(c, "eager_steps", False) for c in self.callbacks
        )
        step = self.jitted if staged else self.forward_backward
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss = step(x, y, self.loss_fn, self.reg)
            value = loss.item()
            self._check_finite(value)
            self._emit("on_after_backward")
            self.optimizer.step()
        self.step += 1
        self.history["batch_loss"].append(value)
        return value

    def forward_backward(
        self, x: np.ndarray, y: np.ndarray, loss_fn: Callable, reg: float
    ) -> Tensor:
        """The loss of a batch (plus the L2 penalty when ``reg``), zeroed gradients and the
        backward pass: the part of a step that ``jit`` stages (``loss_fn`` and ``reg`` are
        arguments, so that changing them stages again)."""
        loss = loss_fn(self.model(x), y)
        if reg:
            loss = loss + F.l2_penalty(self.reg_params, reg)
        self.optimizer.zero_grad()
        loss.backward()
        return loss

    def _check_finite(self, loss: float) -> None:
        first = self.history["batch_loss"][0] if self.history["batch_loss"] else None
        problem = None
        if not np.isfinite(loss):
            problem = f"the loss became {loss}"
        elif self.divergence_factor and first and loss > self.divergence_factor * abs(first):
            problem = f"the loss rose to {loss:.4g} from {first:.4g} at the start"
        else:
            for name, p in self.model.named_parameters():
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                if g is not None and not np.isfinite(g).all():
                    problem = f"the gradient of {name} became non-finite"
                    break
        if problem is not None:
            raise DivergenceError(
                f"training diverged in epoch {self.epoch + 1}, step {self.step + 1}: {problem} "
                f"(lr {self.lr:g}); try a lower learning rate such as {self.lr / 10:g}",
                self.epoch + 1,
                self.step + 1,
                self.lr,
            )

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean loss (without the penalty) and accuracy of the model on (x, y), in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self._evaluate(x, y)
        finally:
            self.model.train(was_training)

    def _evaluate(
        self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024
    ) -> tuple[float, float]:
        loss_sum, correct = 0.0, 0
        with no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start in range(0, len(x), batch_size):
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
                scores = self.model(xb)
                loss_sum += self.loss_fn(scores, yb).item() * len(yb)
                correct += int(np.sum(scores.data.argmax(axis=1) == yb))
        return loss_sum / len(x), correct / len(x)

    @property
    def best_params(self) -> dict[str, np.ndarray]:
        """A copy of the parameters of the best validation epoch (without a validation set, of
        the model as it is: the last epoch is the best known)."""
        if self.x_val is None:
            return self.model.state_dict()
        return {k: v.copy() for k, v in self._best_params.items()}

    def _keep_best(self) -> None:
        if self.x_val is None:  # the last epoch is the best known; nothing to copy
            self.best_epoch = self.epoch
            return
        acc = self.history["val_acc"][-1]
        if acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch = acc, self.epoch
            self._best_params = self.model.state_dict()

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue training, as a flat dict of arrays for :func:`cr.save`:
        ``model/<name>``, ``best/<name>``, ``optim/<index>/<name>`` and ``trainer`` (JSON bytes
        with the epoch, histories, learning rates, random state and ``meta``)."""
        return self._flatten(self._capture())

    def _capture(self) -> dict[str, Any]:
        """A cheap copy of the training state (the histories only by length: they only grow)."""
        model = self.model.state_dict()
        return {
            "model": model,
            "best": model if self.x_val is None else self._best_params,
            "optim": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "lengths": {k: len(v) for k, v in self.history.items()},
            "epoch": self.epoch,
            "step": self.step,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
        }

    def _flatten(self, snap: dict[str, Any]) -> dict[str, np.ndarray]:
        arrays = {f"model/{k}": v for k, v in snap["model"].items()}
        arrays.update({f"best/{k}": v for k, v in snap["best"].items()})
        scalars: dict[str, dict[str, Any]] = {}
        for i, entry in snap["optim"]["state"].items():
            for k, v in entry.items():
                if isinstance(v, np.ndarray):
                    arrays[f"optim/{i}/{k}"] = v
                else:
                    scalars.setdefault(str(i), {})[k] = v
        info = {
            "format": FORMAT,
            "epoch": snap["epoch"],
            "step": snap["step"],
            "epochs": self.epochs,
            "history": {k: v[: snap["lengths"][k]] for k, v in self.history.items()},
            "best_val_acc": snap["best_val_acc"],
            "best_epoch": snap["best_epoch"],
            "optim_scalars": scalars,
            "param_groups": [
                {k: v for k, v in g.items() if k != "params"} for g in snap["optim"]["param_groups"]
            ],
            "rng": snap["rng"],
            "meta": self.meta,
        }
        arrays["trainer"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8).copy()
        return arrays

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore a :meth:`state_dict`; raises :class:`CheckpointError` (nothing changed) when it
        does not fit this trainer's model and optimizer."""
        info = read_info(state)
        model = {k[6:]: v for k, v in state.items() if k.startswith("model/")}
        best = {k[5:]: v for k, v in state.items() if k.startswith("best/")}
        optim_state: dict[int, dict[str, Any]] = {}
        for i, entry in info["optim_scalars"].items():
            optim_state.setdefault(int(i), {}).update(entry)
        for key, value in state.items():
            if key.startswith("optim/"):
                _, i, name = key.split("/", 2)
                optim_state.setdefault(int(i), {})[name] = value
        groups = [
            {**g, "params": list(og["params"])}
            for g, og in zip(
                info["param_groups"], self.optimizer.state_dict()["param_groups"], strict=False
            )
        ]
        saved_model = self.model.state_dict()
        saved_optim = self.optimizer.state_dict()
        try:
            if len(groups) != len(self.optimizer.param_groups):
                raise ValueError("a different number of parameter groups")
            self.model.load_state_dict(best)  # checks the shapes of the best copy
            self.model.load_state_dict(model)
            self.optimizer.load_state_dict({"state": optim_state, "param_groups": groups})
            if type(self.rng.bit_generator).__name__ != info["rng"].get("bit_generator"):
                raise ValueError(f"the random generator is {info['rng'].get('bit_generator')}")
            self.rng.bit_generator.state = info["rng"]
        except (TypeError, ValueError, KeyError) as err:
            self.model.load_state_dict(saved_model)
            self.optimizer.load_state_dict(saved_optim)
            raise CheckpointError(f"the checkpoint does not fit this model: {err}") from None
        self.epoch, self.step = int(info["epoch"]), int(info["step"])
        self.history = {k: list(v) for k, v in info["history"].items()}
        self.best_val_acc, self.best_epoch = float(info["best_val_acc"]), int(info["best_epoch"])
        self._best_params = {k: np.array(v) for k, v in best.items()}
        self.scheduler.last_epoch = self.epoch
        self.meta = dict(info["meta"])
        self._snapshot = None

    def resume(self, path: str | os.PathLike) -> Trainer:
        """Load the checkpoint at ``path`` (see :meth:`state_dict`); :meth:`fit` then trains the
        epochs that remain. Returns ``self``."""
        self.load_state_dict(load(path))
        return self

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> None:
        """Write the current state (atomically) to ``path`` or the configured checkpoint."""
        target = path if path is not None else self.checkpoint
        if target is None:
            raise ValueError("save_checkpoint: no path given and no checkpoint configured")
        save(self.state_dict(), target)

    def _save_snapshot(self) -> None:
        if self._snapshot is not None and self.checkpoint is not None:
            save(self._flatten(self._snapshot), self.checkpoint)  # Ctrl-C here: fit retries
            self.saved_epoch, self._snapshot = self._snapshot["epoch"], None

    # --- pictures ---------------------------------------------------------------------------------
    def plot(self, path: str | os.PathLike, title: str = "") -> None:
        """Write the loss and accuracy curves per epoch to an image (needs matplotlib), the best
        validation epoch marked."""
        best = self.best_epoch if self.x_val is not None and self.best_epoch else None
        plot_history(self.history, path, title, best_epoch=best)


def read_info(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The JSON record of a trainer checkpoint; :class:`CheckpointError` if it is not one."""
    raw = state.get("trainer")
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError("not a training checkpoint (no 'trainer' record)")
    try:
        info = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"the checkpoint's 'trainer' record is unreadable: {err}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError("the checkpoint's 'trainer' record has an unknown format")
    return info


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    title: str,
    best_epoch: int | None = None,
) -> None:
    """Loss (log scale) and train/validation accuracy per epoch, side by side, as an image;
    ``best_epoch`` (the one whose parameters the model keeps) is marked on the accuracy plot."""
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
    if history.get("val_acc"):
        ax_acc.plot(epochs, history["val_acc"], label="validation")
    if best_epoch is not None:
        best = history["val_acc"][best_epoch - 1]
        ax_acc.plot([best_epoch], [best], "o", color="C1", fillstyle="none", markersize=9)
        ax_acc.axvline(best_epoch, color="0.6", linestyle=":", label=f"kept: epoch {best_epoch}")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)


class RichProgress(Callback):
    """A rich progress bar over epochs showing the last epoch's loss and accuracy."""

    def __init__(self, description: str, console: Any = None) -> None:
        self.description, self.console = description, console
        self._progress: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:6.1%}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        history = trainer.history
        self._task = self._progress.add_task(
            self.description,
            total=trainer.epochs,
            completed=trainer.epoch,
            loss=history["loss"][-1] if history["loss"] else float("nan"),
            acc=history["train_acc"][-1] if history["train_acc"] else 0.0,
        )
        self._progress.start()

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._progress.update(
            self._task,
            advance=1,
            loss=trainer.history["loss"][-1],
            acc=trainer.history["train_acc"][-1],
        )

    def on_fit_end(self, trainer: Trainer) -> None:
        self.close()

    def close(self) -> None:
        """Stop drawing the bar (also after an error or Ctrl-C)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _count(value: Any, what: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Trainer: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _split(
    data: Sequence[Any] | Mapping[str, Any], val_split: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if isinstance(data, Mapping):
        x, y = np.asarray(data["x_train"]), np.asarray(data["y_train"])
        x_val, y_val = data.get("x_val"), data.get("y_val")
    else:
        if len(data) != 2:
            raise TypeError("Trainer: data must be (x, y) or a mapping with x_train and y_train")
        (x, y), x_val, y_val = data, None, None
        x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"Trainer: x of shape {x.shape} and labels of shape {y.shape} must be non-empty "
            "with one label per row"
        )
    if x_val is not None:
        return x, y, np.asarray(x_val), np.asarray(y_val)
    if not 0.0 <= val_split < 1.0:
        raise ValueError(f"Trainer: val_split must be in [0, 1), got {val_split}")
    n_val = int(round(len(y) * val_split))
    if n_val == 0:
        return x, y, None, None
    if n_val == len(y):
        raise ValueError(f"Trainer: val_split {val_split} leaves no training rows")
    order = rng.permutation(len(y))
    train, val = order[n_val:], order[:n_val]
    return x[train], y[train], x[val], y[val]


def _build_optimizer(
    optimizer: str | type, model: Module, config: Mapping[str, Any]
) -> _optim.Optimizer:
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Trainer: unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZERS)}"
            )
        optimizer = OPTIMIZERS[optimizer]
    if not (isinstance(optimizer, type) and issubclass(optimizer, _optim.Optimizer)):
        raise TypeError(f"Trainer: optimizer must be a name or a cr.optim class, got {optimizer!r}")
    return optimizer(model.parameters(), **config)
