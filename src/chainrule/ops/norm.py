"""Normalization as one gate each: batch, layer and group normalization share one rule.

Over the ``axes`` being normalized (M elements per statistic), the forward is
``xhat = (x - mean) / sqrt(var + eps)`` and ``out = xhat * weight + bias``. Its backward is the
course's "alternative" closed form rather than a chain of primitive gates::

    dxhat   = g * weight
    dx      = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)
    dweight = sum(g * xhat)     dbias = sum(g)       (over the axes weight broadcasts along)

The same lines, written with array methods, run on raw arrays in an ordinary backward and on
nodes under ``create_graph`` (where ``xhat`` and the scale are recomputed from the input node so
that they differentiate too): second derivatives are exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._util import sum_to_shape


def normalize(
    x: np.ndarray,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    axes: tuple,
    eps: float,
) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` with statistics over ``axes``."""
    return _normalized(x, weight, bias, axes, eps)[0]


def normalize_tracking(
    x: np.ndarray,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    axes: tuple,
    eps: float,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    counter: np.ndarray | None,
    momentum: float | None,
) -> np.ndarray:
    """Batch norm in training mode as staged code runs it: the running statistics (and the
    counter) updated in place from ``x``'s batch, as eager :func:`batch_norm` does, then
    :func:`normalize`."""
    update_running(x, axes, running_mean, running_var, counter, momentum)
    return normalize(x, weight, bias, axes=axes, eps=eps)


def update_running(
    x: np.ndarray,
    axes: tuple,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    counter: np.ndarray | None,
    momentum: float | None,
) -> None:
    """One step of batch norm's running statistics, in place (the arrays stay the same objects,
    so staged code holding them sees every update): ``counter`` (when given) counts the batch,
    ``running = (1 - momentum) * running + momentum * batch`` with the unbiased batch variance,
    and ``momentum=None`` is PyTorch's cumulative average, ``1 / counter``."""
    if counter is not None:
        np.add(counter, 1, out=counter)
    if momentum is None:
        momentum = 1.0 / float(counter)
    count = int(np.prod([x.shape[a] for a in axes]))
    if running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * x.mean(axis=axes)
    if running_var is not None:
        running_var *= 1.0 - momentum
        running_var += momentum * (x.var(axis=axes) * (count / (count - 1)))


def _normalized(x: Any, weight: Any, bias: Any, axes: tuple, eps: float) -> tuple:
    """(out, xhat, inverse standard deviation), on arrays or on nodes. Augmented assignments
    update fresh arrays in place (and rebind nodes), sparing full-size temporaries."""
    xc = x - x.mean(axis=axes, keepdims=True)
    inv = 1.0 / ((xc * xc).mean(axis=axes, keepdims=True) + eps) ** 0.5
    xhat = xc
    xhat *= inv
    if weight is None:
        return (xhat if bias is None else xhat + bias), xhat, inv
    out = xhat * weight
    if bias is not None:
        out += bias
    return out, xhat, inv


class _Normalization(Gate, abstract=True):
    """Shared forward and closed-form backward; subclasses name the gate."""

    @staticmethod
    def forward_code(site):
        args = ", ".join(site.args)
        return site.format(f"normalize({args}, axes={{axes}}, eps={{eps}})")

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, axes, eps):
        out, xhat, inv = _normalized(x, weight, bias, axes, eps)
        ctx.save_for_backward(x, xhat, inv, *(() if weight is None else (weight,)))
        return out

    @staticmethod
    def backward(ctx, grad):
        x, xhat, inv, *weight = ctx.saved_tensors
        axes = ctx.options["axes"]
        if isinstance(x, Node):  # create_graph: statistics recomputed as a circuit of x
            _, xhat, inv = _normalized(x, None, None, axes, ctx.options["eps"])
        need = ctx.needs_input_grad
        gxhat = grad * weight[0] if weight else grad
        gx = None
        if need[0]:
            gx = gxhat - gxhat.mean(axis=axes, keepdims=True)
            gx -= xhat * (gxhat * xhat).mean(axis=axes, keepdims=True)
            gx *= inv
        grads = [gx]
        if len(need) > 1:
            shape = np.shape(ctx.inputs[1].data)
            grads.append(sum_to_shape(grad * xhat, shape) if need[1] else None)
        if len(need) > 2:
            shape = np.shape(ctx.inputs[2].data)
            grads.append(sum_to_shape(grad, shape) if need[2] else None)
        return tuple(grads)


class BatchNorm(_Normalization):
    """Batch normalization with the batch's statistics (per channel, over samples and
    positions).

    When it tracks running statistics its options also hold them (``running_mean``,
    ``running_var``: the module's own arrays, or None), ``counter`` (``num_batches_tracked``, a
    0-d int64 array, or None) and ``momentum``: staged code calls :func:`normalize_tracking`,
    which updates them in place at each call as eager :func:`batch_norm` does. ``forward`` never
    updates them: readers run it again to rebuild a released cache."""

    name = "batch_norm"
    symbol = "BN"

    @staticmethod
    def forward_code(site):
        options = site.options
        if "momentum" not in options:
            return _Normalization.forward_code(site)
        buffers = ", ".join(f"{key}={site.state(options[key], base)}" for key, base in _TRACKED)
        args = ", ".join(site.args)
        return site.format(
            f"normalize_tracking({args}, axes={{axes}}, eps={{eps}}, {buffers}, "
            "momentum={momentum})"
        )

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, axes, eps, **tracking):
        return _Normalization.forward(ctx, x, weight, bias, axes=axes, eps=eps)


# The tracked arrays among BatchNorm's options, and the names staged code binds them as.
_TRACKED = (
    ("running_mean", "running_mean"),
    ("running_var", "running_var"),
    ("counter", "num_batches_tracked"),
)


class LayerNorm(_Normalization):
    """Layer normalization (per sample, over the trailing normalized axes)."""

    name = "layer_norm"
    symbol = "LN"


class GroupNorm(_Normalization):
    """Group normalization (per sample and group of channels)."""

    name = "group_norm"
    symbol = "GN"


def standardize(
    x: np.ndarray, *, mean: np.ndarray | None, var: np.ndarray, eps: float
) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` with per-channel statistics (axis 1 of ``x``), in
    ``x``'s dtype; without ``mean``, ``x / sqrt(var + eps)``."""
    shape = (1, -1) + (1,) * (np.ndim(x) - 2)
    inv = (1.0 / np.sqrt(np.reshape(var, shape) + eps)).astype(x.dtype, copy=False)
    if mean is None:
        return x * inv
    return (x - np.reshape(mean, shape).astype(x.dtype, copy=False)) * inv


class Standardize(Gate):
    """Batch normalization with given statistics (evaluation mode): :func:`standardize`, an
    affine map of x. The statistics are options (the module's running arrays themselves), read
    when it runs, so staged code always uses their current values. Without a mean it only
    scales, which is its own backward."""

    name = "standardize"
    symbol = "BN"

    @staticmethod
    def forward_code(site):
        mean = site.state(site.options["mean"], "running_mean")
        var = site.state(site.options["var"], "running_var")
        return site.format(f"standardize({{0}}, mean={mean}, var={var}, eps={{eps}})")

    @staticmethod
    def forward(ctx, x, *, mean, var, eps):
        return standardize(x, mean=mean, var=var, eps=eps)

    @staticmethod
    def backward(ctx, grad):
        options = ctx.options
        return (Standardize.apply(grad, mean=None, var=options["var"], eps=options["eps"]),)


def _shape(value: Any) -> tuple:
    return value.data.shape if isinstance(value, Node) else np.shape(value)


def _data(value: Any) -> Any:
    return value.data if isinstance(value, Node) else value


def _affine_shape(value: Any, expected: tuple, what: str, gate: str) -> None:
    if value is not None and _shape(value) != expected:
        raise GateError(
            f"gate '{gate}': {what} of shape {_shape(value)} does not fit (expected {expected})"
        )


def _check_eps(eps: Any, gate: str) -> float:
    if not isinstance(eps, (int, float, np.floating)) or isinstance(eps, bool) or eps < 0:
        raise GateError(f"gate '{gate}': eps must be a non-negative number, got {eps!r}")
    return float(eps)


def batch_norm(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> Any:
    """PyTorch's ``batch_norm`` over (N, C), (N, C, L) or (N, C, H, W) inputs, per channel.

    Training mode normalizes with the batch's statistics (one gate) and, when running statistics
    are given, updates them in place: ``running = (1 - momentum) * running + momentum * batch``
    with the unbiased batch variance. Evaluation mode normalizes with the running statistics
    (one gate, then the affine map). Both read and write the running arrays themselves when they
    run, in staged code too.
    """
    return tracked_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


def tracked_batch_norm(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    counter: np.ndarray | None = None,
) -> Any:
    """:func:`batch_norm` that also counts the batches in training mode: ``counter`` (a module's
    ``num_batches_tracked``, a 0-d int64 array) is incremented in place with the running
    statistics, and ``momentum=None`` then means their cumulative average (PyTorch's)."""
    shape = _shape(x)
    if len(shape) not in (2, 3, 4):
        raise GateError(
            f"gate 'batch_norm': input must be (N, C), (N, C, L) or (N, C, H, W), got {shape}"
        )
    c = shape[1]
    for value, what in ((running_mean, "running_mean"), (running_var, "running_var")):
        _affine_shape(value, (c,), what, "batch_norm")
    _affine_shape(weight, (c,), "weight", "batch_norm")
    _affine_shape(bias, (c,), "bias", "batch_norm")
    eps = _check_eps(eps, "batch_norm")
    axes = (0, *range(2, len(shape)))
    ones = (1, c) + (1,) * (len(shape) - 2)
    w = None if weight is None else weight.reshape(ones)
    b = None if bias is None else bias.reshape(ones)
    if not training:
        if running_mean is None or running_var is None:
            raise GateError("gate 'batch_norm': evaluation mode needs running_mean and running_var")
        out = Standardize.apply(x, mean=_data(running_mean), var=_data(running_var), eps=eps)
        if w is not None:
            out = out * w
        return out if b is None else out + b
    count = int(np.prod([shape[a] for a in axes]))
    if count < 2:
        raise GateError(
            f"gate 'batch_norm': training needs more than one value per channel, got input "
            f"of shape {shape}"
        )
    inputs = [x] + ([w] if w is not None else []) + ([b] if b is not None else [])
    if w is None and b is not None:
        inputs = [x, np.ones(ones, np.result_type(_data(x))), b]
    if running_mean is None and running_var is None and counter is None:
        return BatchNorm.apply(*inputs, axes=axes, eps=eps)
    if momentum is None and counter is None or not (momentum is None or 0.0 <= momentum <= 1.0):
        raise GateError(f"gate 'batch_norm': momentum must be in [0, 1], got {momentum!r}")
    tracked = {
        "running_mean": None if running_mean is None else _data(running_mean),
        "running_var": None if running_var is None else _data(running_var),
        "counter": counter,
        "momentum": None if momentum is None else float(momentum),
    }
    update_running(_data(x), axes, **tracked)  # once per application; staged: normalize_tracking
    return BatchNorm.apply(*inputs, axes=axes, eps=eps, **tracked)


def layer_norm(
    x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """PyTorch's ``layer_norm``: each sample normalized over its trailing ``normalized_shape``
    axes, then scaled by ``weight`` and shifted by ``bias`` (both of that shape); one gate."""
    shape = _shape(x)
    norm = (int(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(normalized_shape)
    if not norm or len(norm) > len(shape) or tuple(shape[len(shape) - len(norm) :]) != norm:
        raise GateError(
            f"gate 'layer_norm': normalized_shape {norm} must be the trailing dimensions of the "
            f"input's shape {shape}"
        )
    _affine_shape(weight, norm, "weight", "layer_norm")
    _affine_shape(bias, norm, "bias", "layer_norm")
    eps = _check_eps(eps, "layer_norm")
    axes = tuple(range(len(shape) - len(norm), len(shape)))
    inputs = [x] + ([weight] if weight is not None else []) + ([bias] if bias is not None else [])
    if weight is None and bias is not None:
        inputs = [x, np.ones(norm, np.result_type(_data(x))), bias]
    return LayerNorm.apply(*inputs, axes=axes, eps=eps)


def group_norm(
    x: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """PyTorch's ``group_norm``: the channels of each sample split into ``num_groups`` groups,
    each normalized over its channels and positions (one gate), then a per-channel affine map."""
    shape = _shape(x)
    if len(shape) < 2:
        raise GateError(f"gate 'group_norm': input must be (N, C, ...), got shape {shape}")
    c = shape[1]
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1 or c % num_groups:
        raise GateError(
            f"gate 'group_norm': num_groups {num_groups!r} must be a positive divisor of the "
            f"{c} channels"
        )
    _affine_shape(weight, (c,), "weight", "group_norm")
    _affine_shape(bias, (c,), "bias", "group_norm")
    eps = _check_eps(eps, "group_norm")
    grouped = x.reshape(shape[0], int(num_groups), -1)
    out = GroupNorm.apply(grouped, axes=(2,), eps=eps).reshape(shape)
    ones = (1, c) + (1,) * (len(shape) - 2)
    if weight is not None:
        out = out * weight.reshape(ones)
    if bias is not None:
        out = out + bias.reshape(ones)
    return out
