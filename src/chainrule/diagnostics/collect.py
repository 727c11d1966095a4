"""Sampling a training run: what :class:`Diagnostics` records, and how it records it cheaply.

Every ``every``-th step is *sampled*. Only for that step's forward are forward hooks on the model
attached (they come off again when the step ends), so an unsampled step runs exactly the code it
would run without diagnostics. A sample holds, per layer, a strided subsample of 512 to 1023
of the output's values (all when fewer), for histograms, on which the mean, the std and the
fraction of saturated tanh/sigmoid outputs are estimated when first read (which keeps a sample
cheap: the sampled step computes only what needs the whole output), and which units fired on the
batch (ReLUs); per parameter, the gradient norm, the weight norm and, once the
update is known, the norm of the update over the norm of the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, partial
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
    """One layer's output on a sampled batch. The hook keeps only what needs the whole output
    (which ReLUs fired) and the strided subsample; the statistics read off the subsample (mean,
    std, saturation) are computed when first asked for, so a sampled step does not pay for
    them."""

    kind: str  # the module's class name
    values: np.ndarray  # strided subsample, float32
    fired: np.ndarray | None = None  # ReLU: per unit, whether it was positive on any example
    squashing: str | None = None  # "tanh" or "sigmoid": the saturation test that applies

    @cached_property
    def _moments(self) -> tuple[float, float]:
        return _mean_std(self.values)

    @property
    def mean(self) -> float:
        """Mean of the subsampled outputs."""
        return self._moments[0]

    @property
    def std(self) -> float:
        """Standard deviation of the subsampled outputs."""
        return self._moments[1]

    @cached_property
    def saturated(self) -> float | None:
        """tanh/sigmoid: fraction of the subsampled outputs with a vanishing gradient."""
        sub = self.values
        if self.squashing == "tanh":
            return float(np.count_nonzero(np.abs(sub) > _TANH_LIMIT)) / sub.size
        if self.squashing == "sigmoid":
            low = np.count_nonzero(sub < _SIGMOID_LOW) + np.count_nonzero(sub > 1 - _SIGMOID_LOW)
            return float(low) / sub.size
        return None

    @property
    def dead(self) -> float | None:
        """ReLU: fraction of units that were zero on every example of the batch."""
        return None if self.fired is None else float(1.0 - self.fired.mean())


@dataclass(slots=True)
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


def _mean_std(flat: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation from one sum and one dot product (a tenth of the time of
    ``mean()`` plus ``std()``; the cancellation in E[x²] - E[x]² is harmless at this precision)."""
    n = flat.size
    mean = float(flat.sum()) / n
    return mean, math.sqrt(max(float(np.dot(flat, flat)) / n - mean * mean, 0.0))


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
        self.params = {name: p for name, p in model.named_parameters() if p.size}
        self._names = {id(p): name for name, p in self.params.items()}
        modules = [(name or type(m).__name__, m) for name, m in model.named_modules()]
        #: The layers watched: the activation modules (a model without any: its linear and
        #: convolution layers), by name, in the order ``named_modules`` lists them.
        self.layers = {n: m for n, m in modules if isinstance(m, _ACTIVATIONS)} or {
            n: m for n, m in modules if isinstance(m, Linear) or _is_conv(m)
        }
        self._modules = modules
        self._layer_hooks = [
            (module, partial(self._on_layer, name)) for name, module in self.layers.items()
        ]
        self.steps = 0
        self.losses: list[float] = []
        self.accuracies: dict[str, list[tuple[int, float]]] = {}  # split -> (step, accuracy)
        self.samples: list[Sample] = []
        self.layer_order: list[str] = []  # layers in the order the forward ran them
        self.divergence: Divergence | None = None
        self._handles: list = []
        self._current: Sample | None = None
        self._watched = list(self.params.items())
        #: The weights at the last sampled step, copied into arrays allocated once.
        self._buffers = [np.empty_like(p.data) for p in self.params.values()]
        self._pending: Sample | None = None  # the sample whose update ratio is still to come
        self._arm()

    # --- the hooks, attached only around a sampled step ------------------------------------------
    def _arm(self) -> None:
        self._current = Sample(self.steps)
        if not self.samples:  # the input's scale and the classes are read on the first only
            self._handles.append(self.model.register_forward_pre_hook(self._on_input))
            self._handles.append(self.model.register_forward_hook(self._on_output))
        for module, hook in self._layer_hooks:
            self._handles.append(module.register_forward_hook(hook))

    def _disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _on_input(self, module: Module, args: tuple) -> None:
        if not is_grad_enabled() or not args:  # an evaluation pass: not the training batch
            return
        x = args[0].data if isinstance(args[0], Node) else np.asarray(args[0])
        if x.dtype.kind == "f" and x.size:
            self._current.input_mean, self._current.input_std = _mean_std(x.ravel())

    def _on_layer(self, name: str, module: Module, args: tuple, out: Any) -> None:
        if not is_grad_enabled() or not isinstance(out, Node):
            return
        y = np.asarray(out.data)
        if y.dtype.kind != "f" or y.size == 0:
            return
        flat = y.ravel()
        layer = LayerSample(
            type(module).__name__,
            flat[:: max(1, flat.size // HISTOGRAM_VALUES)].astype(np.float32),
        )
        if isinstance(module, ReLU):
            if y.ndim >= 2:
                layer.fired = (y > 0).any(axis=0).ravel()
        elif isinstance(module, Tanh):
            layer.squashing = "tanh"
        elif isinstance(module, Sigmoid):
            layer.squashing = "sigmoid"
        self._current.layers[name] = layer

    def _on_output(self, module: Module, args: tuple, out: Any) -> None:
        """The model's scores: C classes when they are (N, C)."""
        if self.classes is None and isinstance(out, Node) and out.ndim == 2 and out.shape[1] >= 2:
            self.classes = int(out.shape[1])

    def feeding(self, layer: str) -> Module | None:
        """The module with a bias listed just before ``layer`` (in a Sequential: the linear or
        convolution layer whose output it activates), or None."""
        names = [n for n, _ in self._modules]
        for _, module in reversed(self._modules[: names.index(layer)]):
            if module._parameters.get("bias") is not None:
                return module
        return None

    # --- per step ---------------------------------------------------------------------------------
    def step(self, loss: Any) -> None:
        """Record one optimizer step's loss (a scalar tensor, or a number)."""
        value = float(loss.data if isinstance(loss, Node) else loss)
        self.losses.append(value)
        if value - value != 0.0:  # nan or inf (math.isfinite, without the call)
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
        """Record an accuracy measured at this step (per epoch, on training or validation data)."""
        self.accuracies.setdefault(split, []).append((self.steps, float(accuracy)))

    def record_divergence(self, loss: Any) -> None:
        """Name where a non-finite ``loss`` (a scalar tensor, with its recorded circuit) came
        from; the first call wins. :meth:`step` calls it for a non-finite loss."""
        if self.divergence is None:
            value = float(loss.item() if isinstance(loss, Node) else loss)
            self.divergence = self._divergence(loss, value)

    def _take_parameters(self, sample: Sample) -> None:
        buffers, params, sqrt = self._buffers, sample.params, math.sqrt
        for k, (name, p) in enumerate(self._watched):
            w, g = p.data, p.grad
            if g is not None:
                g = (g.data if isinstance(g, Node) else g).ravel()
            flat_w = w.ravel()
            params[name] = ParamSample(
                sqrt(float(g.dot(g))) if g is not None else 0.0, sqrt(float(flat_w.dot(flat_w)))
            )
            buffer = buffers[k]
            if buffer.shape != w.shape or buffer.dtype != w.dtype:  # the weights were replaced
                buffer = buffers[k] = np.empty_like(w)
            buffer[...] = w  # kept in buffers allocated once: no allocation churn
        self._pending = sample

    def _finish_ratios(self) -> None:
        """The update of the sampled step is the change of the weights since it was sampled
        (whether :meth:`step` is called before or after ``optimizer.step()``, one update lies
        between two calls)."""
        params, sqrt, subtract = self._pending.params, math.sqrt, np.subtract
        self._pending = None
        for (name, p), old in zip(self._watched, self._buffers):
            change = subtract(p.data, old, out=old).ravel()
            change = float(change.dot(change))
            if not change:
                continue  # nothing moved it (e.g. no gradient reached it): nothing to judge
            param = params[name]
            weight = param.weight_norm
            param.update_ratio = sqrt(change) / weight if weight else math.inf

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
