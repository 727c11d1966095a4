"""What a recorded run says, in words: each finding states the numbers behind it and a remedy.

The thresholds are the course's rules of thumb, stated once here:

- the initial softmax loss should be about log C (uniform scores); more than 25% off means the
  initial weights are too large (or, below, something leaks the labels);
- the update/weight ratio ‖Δw‖/‖w‖ of a weight matrix should be about 1e-3 (1e-4 to 1e-2).
  Early updates run higher on a healthy run (the digits MLP at its default lr 0.1 peaks near
  3e-2, the spiral net's small last layer at lr 1 starts at 0.55), so only a median above 0.1
  over 5 consecutive samples, or a single update larger than the weights themselves (ratio
  above 1), says the learning rate is likely too high (at lr 3 the digits MLP starts above 1 and
  kills its ReLUs). A median below 1e-5 over the last window likely means too low, unless dead
  or saturated units are what starves the gradient;
- a ReLU unit that never fires on any sampled batch of the last ``window`` steps is dead; more
  than a quarter of a layer dead is a problem;
- a tanh/sigmoid output whose local gradient is below 2% of its peak is saturated; more than a
  quarter saturated is a problem;
- inputs whose root-mean-square exceeds 10 are not standardized: the first layer's weight
  gradients scale with them (the notes' "inputs scaled by 1000" warning);
- a loss that turns nan or inf is a divergence, named by the gate that produced it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .collect import Diagnostics

__all__ = ["Finding", "findings"]

INITIAL_LOSS_TOLERANCE = 0.25
RATIO_HIGH = 0.1
RATIO_LOW = 1e-5
RUN = 5  # consecutive samples whose median ratio is judged against RATIO_HIGH
RATIO_EXTREME = 1.0  # one update larger than the weights themselves is always too much
DEAD_LIMIT = 0.25
SATURATED_LIMIT = 0.25
INPUT_RMS_LIMIT = 10.0


@dataclass(frozen=True)
class Finding:
    """One thing the run shows: ``kind`` (a stable key for code), ``message`` (plain words with
    the numbers and a remedy), ``subject`` (the layer or parameter, if any) and ``numbers``."""

    kind: str
    message: str
    subject: str | None = None
    numbers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def findings(diag: Diagnostics) -> list[Finding]:
    """Everything that looks wrong in ``diag``'s recorded run, most urgent first (an empty list
    for a healthy run)."""
    found: list[Finding] = []
    if diag.divergence is not None:
        found.append(_divergence(diag))
    found += _initial_loss(diag)
    found += _inputs(diag)
    starved = _dead(diag) + _saturated(diag)
    found += _ratios(diag, low=not starved)
    return found + starved


def _window(diag: Diagnostics) -> list:
    """Samples from the last ``window`` steps (at least the last sample)."""
    if not diag.samples:
        return []
    start = diag.steps - diag.window
    return [s for s in diag.samples if s.step >= start] or diag.samples[-1:]


def _divergence(diag: Diagnostics) -> Finding:
    d = diag.divergence
    lead = "; ".join(d.leading)
    return Finding(
        "divergence",
        f"the loss became {d.loss} at step {d.step}: {d.origin}"
        + (f". Before that, {lead}" if lead else "")
        + (
            ". The very first step failed: check that gate's inputs lie in its domain."
            if d.step == 0
            else ". Lower the learning rate (or the initial weight scale)."
        ),
        d.gate,
        {"step": d.step, "loss": d.loss},
    )


def expected_initial_loss(diag: Diagnostics) -> float | None:
    """log C for C classes, or what the user said to expect."""
    if diag.expected_initial_loss is not None:
        return float(diag.expected_initial_loss)
    return math.log(diag.classes) if diag.classes else None


def _initial_loss(diag: Diagnostics) -> list[Finding]:
    expected = expected_initial_loss(diag)
    if expected is None or not diag.losses or not math.isfinite(diag.losses[0]):
        return []
    first = diag.losses[0]
    if abs(first - expected) <= INITIAL_LOSS_TOLERANCE * expected:
        return []
    how = f"log {diag.classes}" if diag.expected_initial_loss is None else "the expected value"
    if first > expected:
        remedy = "the initial scores are far from uniform: check the weight scale"
    else:
        remedy = "lower than chance: check that the labels do not leak into the inputs"
    return [
        Finding(
            "initial_loss",
            f"initial loss {first:.3g}, expected about {expected:.3g} = {how}: {remedy}",
            None,
            {"initial": first, "expected": expected},
        )
    ]


def _inputs(diag: Diagnostics) -> list[Finding]:
    stats = [(s.input_mean, s.input_std) for s in diag.samples if s.input_std is not None]
    if not stats:
        return []
    mean, std = stats[0]
    rms = math.sqrt(mean * mean + std * std)
    if rms <= INPUT_RMS_LIMIT:
        return []
    return [
        Finding(
            "input_scale",
            f"the inputs have mean {mean:.3g} and std {std:.3g}: standardize them (zero mean, "
            "unit std); the first layer's weight gradients grow with the input scale",
            None,
            {"mean": mean, "std": std},
        )
    ]


def median_ratios(diag: Diagnostics, samples: list | None = None) -> dict[str, float]:
    """Median update/weight ratio per parameter over ``samples`` (default: the last window)."""
    ratios: dict[str, list[float]] = {}
    for sample in _window(diag) if samples is None else samples:
        for name, p in sample.params.items():
            if p.update_ratio is not None and math.isfinite(p.update_ratio):
                ratios.setdefault(name, []).append(p.update_ratio)
    return {name: float(np.median(values)) for name, values in ratios.items()}


def _ratios(diag: Diagnostics, low: bool) -> list[Finding]:
    lr = _learning_rate(diag)
    at = f", lr {lr:g}" if lr is not None else ""
    peak: dict[str, tuple[float, int, int]] = {}  # largest median of RUN samples, and where
    for first in range(max(1, len(diag.samples) - RUN + 1)):
        run = diag.samples[first : first + RUN]
        for name, ratio in median_ratios(diag, run).items():
            if ratio > peak.get(name, (-1.0,))[0]:
                peak[name] = (ratio, run[0].step, run[-1].step)
    last = median_ratios(diag)
    found = []
    for name, param in diag.params.items():
        if param.ndim < 2:  # biases start near 0, so their ratio says little
            continue
        single = max(
            (
                (s.params[name].update_ratio, s.step)
                for s in diag.samples
                if name in s.params and s.params[name].update_ratio is not None
            ),
            default=(0.0, 0),
        )
        if single[0] > RATIO_EXTREME:
            where = f"at step {single[1]}"
        elif name in peak and peak[name][0] > RATIO_HIGH:
            where = f"median of the samples at steps {peak[name][1]}-{peak[name][2]}"
            single = peak[name][:2]
        else:
            where = None
        if where is not None:
            found.append(
                Finding(
                    "ratio_high",
                    f"update/weight ratio {single[0]:.2g} on {name} ({where}{at}), healthy is "
                    "about 1e-3: learning rate likely too high",
                    name,
                    {"ratio": single[0], "step": single[1]},
                )
            )
        elif low and name in last and last[name] < RATIO_LOW:
            found.append(
                Finding(
                    "ratio_low",
                    f"update/weight ratio {last[name]:.2g} on {name} (median of the last "
                    f"{_span(diag)} steps{at}), healthy is about 1e-3: learning rate likely "
                    "too low",
                    name,
                    {"ratio": last[name]},
                )
            )
    return found


def _span(diag: Diagnostics) -> int:
    """How many steps the last window covers (more if its only sample is older)."""
    window = _window(diag)
    return max(diag.steps - window[0].step, min(diag.window, diag.steps)) if window else 0


def _learning_rate(diag: Diagnostics) -> float | None:
    groups = getattr(diag.optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else None


def _dead(diag: Diagnostics) -> list[Finding]:
    window = _window(diag)
    found = []
    for name in diag.layer_order:
        masks = [s.layers[name].fired for s in window if name in s.layers]
        masks = [m for m in masks if m is not None]
        if not masks or any(m.shape != masks[0].shape for m in masks):
            continue
        dead = float(1.0 - np.logical_or.reduce(masks).mean())
        if dead <= DEAD_LIMIT:
            continue
        steps = _span(diag)
        found.append(
            Finding(
                "dead_relu",
                f"layer {name}: {dead:.0%} of ReLUs never fired on the {len(masks)} sampled "
                f"batch{'es' if len(masks) > 1 else ''} of the last {steps} step"
                f"{'s' if steps > 1 else ''}: lower the learning rate or the initial weight "
                f"scale{_bias_words(diag, name)}",
                name,
                {"dead": dead, "batches": len(masks)},
            )
        )
    return found


def _bias_words(diag: Diagnostics, layer: str) -> str:
    """The mean bias of the layer that feeds ``layer``, when it is clearly negative:
    all-negative biases are a classic way to kill ReLUs."""
    feeding = diag.feeding(layer)
    bias = None if feeding is None else feeding.bias
    if bias is None or not bias.size:
        return ""
    mean = float(np.mean(bias.data))
    return f"; the biases feeding it average {mean:.3g}: start them at 0" if mean < -0.1 else ""


def _saturated(diag: Diagnostics) -> list[Finding]:
    window = _window(diag)
    found = []
    for name in diag.layer_order:
        values = [s.layers[name].saturated for s in window if name in s.layers]
        values = [v for v in values if v is not None]
        if not values:
            continue
        fraction = float(np.mean(values))
        if fraction <= SATURATED_LIMIT:
            continue
        kind = window[-1].layers[name].kind if name in window[-1].layers else "unit"
        found.append(
            Finding(
                "saturated",
                f"layer {name} ({kind}): {fraction:.0%} of outputs saturated (local gradient "
                "below 2% of its peak, so almost no gradient flows back): lower the initial "
                "weight scale or standardize the inputs",
                name,
                {"saturated": fraction},
            )
        )
    return found
