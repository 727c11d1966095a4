"""Sampling a training run: what :class:`Diagnostics` records, and how it records it cheaply.

Every ``every``-th step is *sampled*. Only for that step's forward are forward hooks on the model
attached (they come off again when the step ends), so an unsampled step runs exactly the code it
would run without diagnostics. A sample holds, per layer, the output's mean, std, a strided
subsample of its values (for histograms), which units fired (ReLUs) and the fraction of
saturated outputs (tanh, sigmoid); per parameter, the gradient norm, the weight norm and, once
the next step has run, the norm of the update over the norm of the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import Node, is_grad_enabled, topological_order
from ..nn import ELU, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from ..nn.module import Module

__all__ = ["Diagnostics", "Divergence", "LayerSample", "ParamSample", "Sample"]

#: Values kept per layer and sample for the histograms (a strided subsample).
HISTOGRAM_VALUES = 512
#: A tanh or sigmoid output is saturated when its local gradient is below this fraction of the
#: gradient's peak: 1 - y² < 0.02 (|y| > 0.99) for tanh, y(1 - y) < 0.02 * 0.25 for sigmoid.
SATURATION = 0.02
_TANH_LIMIT = math.sqrt(1 - SATURATION)
_SIGMOID_LOW = (1 - math.sqrt(1 - SATURATION)) / 2

_ACTIVATIONS = (ReLU, LeakyReLU, ELU, Tanh, Sigmoid)


@dataclass
class LayerSample:
    """One layer's output on a sampled batch."""

    kind: str  # the module's class name
    mean: float
    std: float
    values: np.ndarray  # strided subsample, float32
    fired: np.ndarray | None = None  # ReLU: per unit, whether it was positive on any example
    saturated: float | None = None  # tanh/sigmoid: fraction of outputs with a vanishing gradient

    @property
    def dead(self) -> float | None:
        """ReLU: fraction of units that were zero on every example of the batch."""
        return None if self.fired is None else float(1.0 - self.fired.mean())


@dataclass
class ParamSample:
    """One parameter at a sampled step: gradient norm, weight norm, update/weight ratio."""

    grad_norm: float
    weight_norm: float
    update_ratio: float | None = None  # filled in when the next step has changed the weights


@dataclass
class Sample:
    """Everything recorded at one sampled step."""

    step: int
    layers: dict[str, LayerSample] = field(default_factory=dict)
    params: dict[str, ParamSample] = field(default_factory=dict)
    input_mean: float | None = None
    input_std: float | None = None


@dataclass
class Divergence:
    """Where a non-finite loss came from, read off the loss's recorded circuit."""

    step: int
    loss: float
    origin: str  # plain words: the first gate (or parameter) whose value is not finite
    gate: str | None  # that gate's name, None when a parameter or the input itself is non-finite
    leading: list[str]  # what led there: recent losses and ratios, in words


def _norm(array: Any) -> float:
    a = np.asarray(array, dtype=np.float64).ravel()
    return float(math.sqrt(a @ a))


def _finite(x: Any) -> bool:
    return bool(np.all(np.isfinite(x)))


class Diagnostics:
    """Watch a model train: per-layer activation statistics, dead ReLUs, saturated tanh/sigmoid
    units, gradient norms, update/weight ratios and the loss, sampled every ``every`` steps.

    Call :meth:`step` once per optimizer step (after ``optimizer.step()``, or between
    ``backward()`` and it) with the batch's loss, and :meth:`record_accuracy` when you measure
    one (with :class:`chainrule.train.Trainer`, pass :meth:`callback` instead). Then
    :meth:`findings` lists what looks wrong, in words, and :meth:`report` writes an HTML page.
    ``classes`` (default: the model output's last dimension) sets the expected initial
    cross-entropy loss, log C; ``expected_initial_loss`` overrides it (e.g. C - 1 for the SVM loss
    with scores near 0).
    """

    def __init__(
        self,
        model: Module,
        optimizer: Any = None,
        *,
        every: int = 10,
        classes: int | None = None,
        expected_initial_loss: float | None = None,
        window: int = 100,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(
                f"Diagnostics: model must be a cr.nn.Module, got {type(model).__name__}"
            )
        for value, what in ((every, "every"), (window, "window")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Diagnostics: {what} must be a positive integer, got {value!r}")
        if classes is not None and (not isinstance(classes, int) or classes < 2):
            raise ValueError(f"Diagnostics: classes must be an integer >= 2, got {classes!r}")
        self.model = model
        self.optimizer = optimizer
        self.every = every
        self.window = window
        self.classes = classes
        self.expected_initial_loss = expected_initial_loss
        self.params = dict(model.named_parameters())
        self._names = {id(p): name for name, p in self.params.items()}
        self.layers = {
            name or type(m).__name__: m
            for name, m in model.named_modules()
            if isinstance(m, _ACTIVATIONS + (Linear,)) or _is_conv(m)
        }
        self.steps = 0
        self.losses: list[float] = []
        self.accuracies: dict[str, list[tuple[int, float]]] = {}  # split -> (step, accuracy)
        self.samples: list[Sample] = []
        self.layer_order: list[str] = []  # layers in the order the forward ran them
        self.divergence: Divergence | None = None
        self._handles: list = []
        self._current: Sample | None = None
        self._before: dict[str, np.ndarray] | None = None  # weights at the last sampled step
        self._pending: Sample | None = None  # the sample whose update ratio is still to come
        self._arm()

    # --- the hooks, attached only around a sampled step ------------------------------------------
    def _arm(self) -> None:
        self._current = Sample(self.steps)
        self._handles.append(self.model.register_forward_pre_hook(self._on_input))
        for name, module in self.layers.items():
            self._handles.append(
                module.register_forward_hook(lambda m, args, out, n=name: self._on_layer(n, m, out))
            )

    def _disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _on_input(self, module: Module, args: tuple) -> None:
        if not is_grad_enabled() or not args:  # an evaluation pass: not the training batch
            return
        x = args[0].data if isinstance(args[0], Node) else np.asarray(args[0])
        if x.dtype.kind in "fiu" and x.size:
            self._current.input_mean = float(x.mean())
            self._current.input_std = float(x.std())
        self._current.layers.clear()  # the last training forward before step() counts

    def _on_layer(self, name: str, module: Module, out: Any) -> None:
        if not is_grad_enabled() or not isinstance(out, Node):
            return
        y = np.asarray(out.data)
        if y.dtype.kind != "f" or y.size == 0:
            return
        flat = y.ravel()
        stride = max(1, flat.size // HISTOGRAM_VALUES)
        layer = LayerSample(
            type(module).__name__,
            float(flat.mean()),
            float(flat.std()),
            flat[::stride].astype(np.float32),
        )
        if isinstance(module, ReLU) and y.ndim >= 2:
            layer.fired = (y > 0).any(axis=0).ravel()
        elif isinstance(module, Tanh):
            layer.saturated = float(np.mean(np.abs(flat) > _TANH_LIMIT))
        elif isinstance(module, Sigmoid):
            layer.saturated = float(np.mean((flat < _SIGMOID_LOW) | (flat > 1 - _SIGMOID_LOW)))
        self._current.layers[name] = layer
        if self.classes is None and name == self._last_layer() and y.ndim == 2:
            self.classes = int(y.shape[1]) if y.shape[1] >= 2 else None

    def _last_layer(self) -> str | None:
        return next(reversed(self.layers), None)

    # --- per step ---------------------------------------------------------------------------------
    def step(self, loss: Any) -> None:
        """Record one optimizer step's loss (a scalar tensor, or a number)."""
        value = float(loss.item() if isinstance(loss, Node) else loss)
        self.losses.append(value)
        if not math.isfinite(value):
            self.record_divergence(loss)
        if self._pending is not None:
            self._finish_ratios()
        if self._current is not None:
            self._disarm()
            if not self._current.params:  # no before_update(): the next update is measured
                self._take_parameters(self._current)
            if not self.layer_order:
                self.layer_order = list(self._current.layers)
            self.samples.append(self._current)
            self._current = None
        self.steps += 1
        if self.steps % self.every == 0:
            self._arm()

    def before_update(self) -> None:
        """Optional, between ``backward()`` and ``optimizer.step()``: on a sampled step, take the
        gradients and weights now, so that :meth:`step` measures this very step's update (the
        Trainer callback does this; without it the next step's update is measured)."""
        if self._current is not None and not self._current.params:
            self._take_parameters(self._current)

    def record_accuracy(self, accuracy: float, split: str = "train") -> None:
        """Record an accuracy (e.g. per epoch, on the training or validation set) at this step."""
        self.accuracies.setdefault(split, []).append((self.steps, float(accuracy)))

    def record_divergence(self, loss: Any) -> None:
        """Name where a non-finite ``loss`` (a scalar tensor, with its recorded circuit) came
        from; the first call wins. :meth:`step` calls it for a non-finite loss."""
        if self.divergence is None:
            value = float(loss.item() if isinstance(loss, Node) else loss)
            self.divergence = self._divergence(loss, value)

    def _take_parameters(self, sample: Sample) -> None:
        for name, p in self.params.items():
            grad = p.grad
            sample.params[name] = ParamSample(
                _norm(grad.data if isinstance(grad, Node) else grad) if grad is not None else 0.0,
                _norm(p.data),
            )
        self._before = {name: p.data.copy() for name, p in self.params.items()}
        self._pending = sample

    def _finish_ratios(self) -> None:
        """The update of the sampled step is the change of the weights since it was sampled
        (whether :meth:`step` is called before or after ``optimizer.step()``, one update lies
        between two calls)."""
        sample, before = self._pending, self._before
        self._pending = self._before = None
        for name, p in self.params.items():
            weight = sample.params[name].weight_norm
            change = _norm(p.data - before[name])
            if not change:
                continue  # nothing moved it (e.g. no gradient reached it): nothing to judge
            sample.params[name].update_ratio = change / weight if weight else math.inf

    def callback(self) -> Any:
        """A :class:`chainrule.train.Trainer` callback that feeds this object."""
        from .trainer import DiagnosticsCallback

        return DiagnosticsCallback(self)

    def settle(self) -> None:
        """Complete the last sample's update ratios from the weights as they are now (a run
        that stopped, e.g. on divergence, right after a sampled step's update)."""
        if self._pending is not None:
            self._finish_ratios()

    def findings(self) -> list:
        """What looks wrong, in words with the numbers behind them (see
        :mod:`chainrule.diagnostics.findings`); empty for a healthy run."""
        from .findings import findings

        self.settle()
        return findings(self)

    def report(self, path: Any, title: str | None = None) -> str:
        """Write a self-contained HTML report (plots embedded, no network) to ``path``."""
        from .report import write

        self.settle()
        return write(self, path, title)

    def close(self) -> None:
        """Detach from the model (the recorded history stays)."""
        self._disarm()
        self._current = None

    # --- divergence -------------------------------------------------------------------------------
    def _divergence(self, loss: Any, value: float) -> Divergence:
        """Name the first non-finite value in the loss's circuit: inputs are visited before the
        gates they feed, so the first one found was made from finite values only."""
        origin, gate = "the loss (no recorded circuit to read)", None
        if isinstance(loss, Node):
            for node in reversed(topological_order(loss, only_grad=False)):
                if _finite(node.data):
                    continue
                if node.gate is None:
                    name = self._names.get(id(node))
                    origin = (
                        f"parameter {name} already holds non-finite values (the previous update "
                        "made them)"
                        if name
                        else "an input of the model that is already non-finite"
                    )
                else:
                    gate = node.gate.name
                    origin = f"gate '{gate}' made {_describe(node.data)} from " + ", ".join(
                        self._input_words(inp) for inp in node.inputs
                    )
                break
        return Divergence(self.steps, value, origin, gate, self._leading())

    def _input_words(self, node: Node) -> str:
        name = self._names.get(id(node))
        data = np.asarray(node.data)
        biggest = float(np.max(np.abs(data))) if data.size else 0.0
        what = name or (
            f"the output of gate '{node.gate.name}'" if node.gate is not None else "an input"
        )
        return f"{what} (largest magnitude {biggest:.3g})"

    def _leading(self) -> list[str]:
        words = []
        finite = [v for v in self.losses if math.isfinite(v)]
        if finite:
            tail = ", ".join(f"{v:.3g}" for v in finite[-5:])
            words.append(f"the last finite losses were {tail} (initial {finite[0]:.3g})")
        for sample in reversed(self.samples):
            ratios = {
                n: p.update_ratio for n, p in sample.params.items() if p.update_ratio is not None
            }
            if ratios:
                name = max(ratios, key=ratios.get)
                words.append(
                    f"at step {sample.step} the largest update/weight ratio was "
                    f"{ratios[name]:.3g} on {name} (healthy: about 1e-3)"
                )
                break
        return words


def _describe(data: Any) -> str:
    a = np.asarray(data)
    if np.isnan(a).any():
        return "nan"
    return "inf"


def _is_conv(module: Module) -> bool:
    """Convolutions, when ``cr.nn`` has them: a module whose weight is 4-d (out, in, kh, kw)."""
    weight = module._parameters.get("weight")
    return weight is not None and weight.ndim == 4
