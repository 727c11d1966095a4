"""The course's sanity checks before a long training run: is the initial loss what chance
predicts (log C for softmax over C classes), and can the model overfit a tiny subset (20
examples, no regularization) to 100% training accuracy? A model that fails either has a bug or a
bad setting that more training will not fix."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import optim as _optim
from ..engine import no_grad
from ..nn import functional as F
from ..nn.module import Module
from .findings import INITIAL_LOSS_TOLERANCE

__all__ = ["Check", "SanityReport", "sanity_check"]


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, and what was measured, in words."""

    name: str
    passed: bool
    message: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.passed else 'FAIL'} {self.name}: {self.message}"


@dataclass(frozen=True)
class SanityReport:
    """The checks' outcomes; ``passed`` when all passed."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self.checks)


def sanity_check(
    model: Module,
    x: Any,
    y: Any,
    *,
    optimizer: type = _optim.SGD,
    optim_config: Mapping[str, Any] | None = None,
    loss_fn: Callable[[Any, Any], Any] | None = None,
    subset: int = 20,
    steps: int = 500,
    expected_initial_loss: float | None = None,
    seed: int = 0,
) -> SanityReport:
    """Check ``model`` (at its current weights) on ``(x, y)``: the initial loss against log C
    (C from the labels, or ``expected_initial_loss``), then that ``optimizer`` with
    ``optim_config`` (default SGD, lr 0.1) fits ``subset`` seeded-random examples perfectly
    within ``steps`` full-batch steps. The model's weights are restored afterwards."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"sanity_check: x has {len(x)} rows and y {len(y)}; need equal, > 0")
    loss_fn = loss_fn or F.cross_entropy
    classes = int(y.max()) + 1
    expected = (
        float(expected_initial_loss) if expected_initial_loss is not None else math.log(classes)
    )
    state = model.state_dict()
    try:
        return SanityReport(
            (
                _initial_loss(model, x, y, loss_fn, expected, classes, expected_initial_loss),
                _overfit(
                    model,
                    x,
                    y,
                    loss_fn,
                    optimizer,
                    dict(optim_config or {"lr": 0.1}),
                    subset,
                    steps,
                    seed,
                ),
            )
        )
    finally:
        model.load_state_dict(state)
        model.zero_grad()


def _initial_loss(model, x, y, loss_fn, expected, classes, given) -> Check:
    with no_grad():
        loss = float(loss_fn(model(x[:1000]), y[:1000]).item())
    how = f"log {classes}" if given is None else "the expected value"
    ok = math.isfinite(loss) and abs(loss - expected) <= INITIAL_LOSS_TOLERANCE * expected
    advice = "" if ok else ": check the initial weight scale (and that nothing leaks labels)"
    return Check(
        "initial loss",
        ok,
        f"{loss:.4g} with no regularization, expected about {expected:.4g} = {how}{advice}",
    )


def _overfit(model, x, y, loss_fn, optimizer, config, subset, steps, seed) -> Check:
    n = min(subset, len(x))
    rows = np.random.default_rng(seed).choice(len(x), n, replace=False)
    xs, ys = x[rows], y[rows]
    opt = optimizer(model.parameters(), **config)
    loss_value, accuracy, taken = math.nan, 0.0, 0
    while True:
        scores = model(xs)
        loss = loss_fn(scores, ys)
        loss_value = float(loss.item())
        accuracy = float(np.mean(scores.data.argmax(axis=1) == ys))
        if accuracy == 1.0 or not math.isfinite(loss_value) or taken == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        taken += 1
    lr = config.get("lr")
    setting = f"{optimizer.__name__}" + (f" lr {lr:g}" if lr is not None else "")
    if accuracy == 1.0:
        return Check(
            f"overfit {n} examples",
            True,
            f"100% training accuracy after {taken} steps ({setting}, loss {loss_value:.3g})",
        )
    return Check(
        f"overfit {n} examples",
        False,
        f"only {accuracy:.0%} training accuracy after {taken} steps ({setting}, loss "
        f"{loss_value:.3g}): a model that cannot memorize {n} examples has a bug, or the "
        "learning rate is far off (try 10x up and down)",
    )
