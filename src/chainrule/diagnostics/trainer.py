"""Diagnostics inside :class:`chainrule.train.Trainer`: a callback that feeds each step's loss
and each epoch's accuracies to a :class:`Diagnostics`, and keeps the loss's circuit when it turns
non-finite (the trainer stops before the step, so the callback would never see that loss)."""

from __future__ import annotations

import math
from typing import Any

from ..engine import is_grad_enabled
from ..train import Callback, Trainer
from .collect import Diagnostics

__all__ = ["DiagnosticsCallback"]


class DiagnosticsCallback(Callback):
    """Pass ``diag.callback()`` in a Trainer's ``callbacks``. It watches the eager step (forward
    hooks on sampled steps, the circuit of a non-finite loss), so a ``jit`` trainer runs its steps
    eagerly while it is attached."""

    eager_steps = True

    def __init__(self, diag: Diagnostics) -> None:
        self.diag = diag

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.diag.optimizer is None:
            self.diag.optimizer = trainer.optimizer
        loss_fn, diag = trainer.loss_fn, self.diag
        if getattr(loss_fn, "diagnostics", None) is diag:  # a second fit(): already watched
            return

        def watched(scores: Any, labels: Any) -> Any:
            loss = loss_fn(scores, labels)
            if is_grad_enabled() and not math.isfinite(float(loss.data)):
                diag.record_divergence(loss)
            return loss

        watched.diagnostics = diag
        trainer.loss_fn = watched

    def on_after_backward(self, trainer: Trainer) -> None:
        self.diag.before_update()

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.diag.step(loss)

    def on_epoch_end(self, trainer: Trainer) -> None:
        history = trainer.history
        self.diag.record_accuracy(history["train_acc"][-1], "train")
        if history["val_acc"]:
            self.diag.record_accuracy(history["val_acc"][-1], "validation")
