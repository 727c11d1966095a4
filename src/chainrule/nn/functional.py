"""Stateless neural-network functions: the affine map, activations, dropout, losses and the L2
penalty, written with chainrule's gates so backprop flows through each of them.

Names and defaults follow ``torch.nn.functional``; ``svm_loss`` is the CS231n multiclass hinge.
The two hot spots of training, the affine map and softmax cross-entropy, are single gates
(:class:`Affine`, :class:`SoftmaxCrossEntropy`) rather than chains of built-in ones: a gate costs
a node and a visit of the backward sweep, and a layer as four gates (transpose, matmul, broadcast,
add) spends more time in the engine than in NumPy at mini-batch sizes. Their backward rules are
written with operators, so they also differentiate under ``create_graph``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import ops
from ..engine import GateError, GateTypeError, Node
from ..gate import Gate
from ..ops._util import raw
from ..ops.conv import conv2d
from ..ops.mask import NoGradGate
from ..ops.norm import batch_norm, group_norm, layer_norm
from ..ops.pad import pad
from ..ops.pool import avg_pool2d, max_pool2d
from ..ops.random import dropout_mask
from ..tensor import Tensor

__all__ = [
    "Affine",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "max_pool2d",
    "SoftmaxCrossEntropy",
    "cross_entropy",
    "dropout",
    "elu",
    "group_norm",
    "l2_penalty",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "mse_loss",
    "pad",
    "relu",
    "sigmoid",
    "softmax",
    "svm_loss",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")

relu = ops.relu
sigmoid = ops.sigmoid
tanh = ops.tanh


def softmax(input: Any, dim: int = -1) -> Tensor:
    """Softmax along dimension ``dim`` (PyTorch's ``F.softmax``; ``cr.softmax`` with ``axis``)."""
    return ops.softmax(input, axis=dim)


def log_softmax(input: Any, dim: int = -1) -> Tensor:
    """Log-softmax along ``dim``, computed without forming softmax (PyTorch's ``F.log_softmax``)."""
    return ops.log_softmax(input, axis=dim)


def _data(x: Any) -> np.ndarray:
    return np.asarray(raw(x))


class Affine(Gate):
    """x @ Wᵀ (+ b) as one gate, W of shape (out, in): dx = g @ W, dW = gᵀ @ x, db = Σ g over
    the rows (leading dimensions of x are flattened into rows for dW and db)."""

    name = "linear"
    symbol = "xWᵀ+b"

    @staticmethod
    def forward_code(site):
        """The staged forward: ``x @ W.T + b`` (without ``+ b`` when there is no bias)."""
        return site.format("{0} @ {1}.T + {2}" if len(site.args) == 3 else "{0} @ {1}.T")

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        out = x @ w.T
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        inputs = ctx.inputs
        gx = grad @ w if inputs[0].requires_grad else None
        g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])
        gw = None
        if inputs[1].requires_grad:
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            gw = g2.T @ x2
        if len(inputs) == 2:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if inputs[2].requires_grad else None)


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weightᵀ + bias, with ``weight`` of shape (out_features, in_features) as in PyTorch."""
    if isinstance(x, Node):
        xs = x.data.shape
    else:
        xs = x.shape if type(x) is np.ndarray else np.shape(x)
    ws = weight.data.shape if isinstance(weight, Node) else np.shape(weight)
    if len(ws) != 2 or not xs or xs[-1] != ws[1]:
        raise GateError(
            f"linear: input of shape {xs} does not fit weight of shape {ws} (the input's last "
            f"dimension must equal in_features = {ws[1] if len(ws) == 2 else '?'})"
        )
    if bias is None:
        return Affine.apply(x, weight)
    bs = bias.data.shape if isinstance(bias, Node) else np.shape(bias)
    if bs != (ws[0],):
        raise GateError(
            f"linear: bias of shape {bs} does not fit weight of shape {ws} (expected ({ws[0]},))"
        )
    return Affine.apply(x, weight, bias)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (gradient negative_slope at 0, as PyTorch)."""
    return ops.where(ops.greater(x, 0), x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1) (gradient alpha at 0, as PyTorch)."""
    negative = ops.exp(ops.clip(x, None, 0.0)) - 1.0
    return ops.where(ops.greater(x, 0), x, negative * alpha)


def dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the survivors by
    1/(1-p), so evaluation needs no rescaling; the identity when not ``training`` or p == 0.

    The mask is a gate of its own (:func:`chainrule.ops.random.dropout_mask`) feeding a multiply,
    so staged code draws a new mask at each call: from ``generator`` (continuing its stream), from
    a fresh generator seeded with ``seed`` (the same mask each call, as here), or from the
    default generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if generator is not None and seed is not None:
        raise ValueError("dropout: give either seed or generator, not both")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * np.zeros_like(_data(x))
    return x * dropout_mask(x, p, generator if seed is None else seed)


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error (input - target)², averaged ('mean'), summed ('sum') or elementwise."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if np.shape(_data(input)) != np.shape(_data(target)):
        raise GateError(
            f"mse_loss: input of shape {np.shape(_data(input))} and target of shape "
            f"{np.shape(_data(target))} must have the same shape"
        )
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


# .max()/.sum()/.mean() reduce with these ufuncs behind a Python layer; the gate calls them.
_max, _sum = np.maximum.reduce, np.add.reduce

# Each signed integer dtype (either byte order) and the unsigned one of the same size and order.
_UNSIGNED = {np.dtype(f"{o}i{n}"): np.dtype(f"{o}u{n}") for o in "<>" for n in (1, 2, 4, 8)}


def _check_labels(scores: Any, labels: Any, name: str) -> np.ndarray:
    shape = scores.data.shape if isinstance(scores, Node) else np.shape(scores)
    if len(shape) != 2 or 0 in shape:
        raise GateError(
            f"{name}: scores must be 2-D (samples, classes) and non-empty, got shape {shape}"
        )
    y = labels if type(labels) is np.ndarray else _data(labels)
    if y.dtype.kind not in "iu":
        raise GateTypeError(f"{name}: labels must be integers (class indices), got dtype {y.dtype}")
    if y.shape != (shape[0],):
        raise GateError(
            f"{name}: labels of shape {y.shape} do not match {shape[0]} samples (expected "
            f"shape ({shape[0]},))"
        )
    # Viewed as unsigned, a negative label is huge: one argmax checks both ends of the range.
    unsigned = y.view(_UNSIGNED[y.dtype]) if y.dtype.kind == "i" else y
    if unsigned[unsigned.argmax()] >= shape[1]:  # y is non-empty; argmax beats max's ufunc reduce
        bad = y[(y < 0) | (y >= shape[1])][0]
        raise GateError(f"{name}: label {int(bad)} is out of range for {shape[1]} classes")
    return y


class SoftmaxCrossEntropy(Gate):
    """-log softmax(s)[y] per row from scores s (N, C) and constant integer labels y, reduced by
    mean, sum or none; local gradient softmax(s) - onehot(y)."""

    name = "cross_entropy"
    symbol = "CE"
    forward_code = "cross_entropy_forward({0}, {labels}, {reduction})"

    @staticmethod
    def forward(ctx, s, *, labels, reduction):
        z = s - _max(s, axis=1, keepdims=True)
        e = np.exp(z)
        total = _sum(e, axis=1, keepdims=True)
        ctx.save_for_backward(s, e, total)
        return _cross_entropy_losses(z, total, labels, reduction)

    @staticmethod
    def backward(ctx, grad):
        s, e, total = ctx.saved_tensors
        labels, reduction = ctx.options["labels"], ctx.options["reduction"]
        n = len(labels)
        if isinstance(s, Node):  # create_graph: the same rule in differentiable operations
            d = ops.softmax(s, axis=1) - OneHot.apply(s, labels=labels)
        else:
            d = e / total
            d[np.arange(n), labels] -= 1
            if reduction != "none":
                if reduction == "sum":
                    d *= grad
                elif grad.dtype == np.float64:  # as a Python float: the same IEEE division, and
                    d *= float(grad) / n  # no 0-d array operation
                else:
                    d *= grad / n
                return (d,)
        if reduction == "mean":
            return (d * (grad / n),)
        if reduction == "sum":
            return (d * grad,)
        return (d * grad.reshape(n, 1),)


def _cross_entropy_losses(z: np.ndarray, total: np.ndarray, labels: np.ndarray, reduction: str):
    """The loss from the shifted scores ``z`` and their row sums of exp."""
    losses = np.log(total[:, 0]) - z[np.arange(len(labels)), labels]
    if reduction == "none":
        return losses
    summed = _sum(losses)
    return np.asarray(summed / len(losses) if reduction == "mean" else summed)


def cross_entropy_forward(s: np.ndarray, labels: np.ndarray, reduction: str) -> np.ndarray:
    """Softmax cross-entropy of scores ``s`` (the gate's staged code; its forward is the same
    computation, keeping the exponentials for backward)."""
    z = s - _max(s, axis=1, keepdims=True)
    return _cross_entropy_losses(z, _sum(np.exp(z), axis=1, keepdims=True), labels, reduction)


class OneHot(NoGradGate):
    """Rows of zeros shaped like the scores ``s``, with 1 at each row's label: cross-entropy's
    routing, an input without gradient."""

    name = "one_hot"
    forward_code = "one_hot_forward({0}, {labels})"

    @staticmethod
    def forward(ctx, s, *, labels):
        return one_hot_forward(s, labels)


def one_hot_forward(s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """zeros_like(s) with 1 at ``[i, labels[i]]``."""
    onehot = np.zeros(s.shape, dtype=s.dtype)
    onehot[np.arange(len(labels)), labels] = 1
    return onehot


def cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy -log softmax(logits)[y] from raw scores and integer labels, with
    the maximum subtracted first (stable for large logits); one gate."""
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
        )
    y = _check_labels(logits, labels, "cross_entropy")
    return SoftmaxCrossEntropy.apply(logits, labels=y, reduction=reduction)


def svm_loss(scores: Tensor, labels: Any, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """The CS231n multiclass hinge: per sample, the sum over wrong classes j of
    max(0, s_j - s_y + margin); averaged over samples by default."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"svm_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    y = _check_labels(scores, labels, "svm_loss")
    n, classes = np.shape(_data(scores))
    correct = scores[np.arange(n), y].reshape(n, 1)
    margins = ops.relu(scores - correct + margin)
    wrong = np.ones((n, classes), dtype=_data(scores).dtype)
    wrong[np.arange(n), y] = 0
    return _reduce((margins * wrong).sum(axis=1), reduction, "svm_loss")


def l2_penalty(parameters: Iterable[Tensor], reg: float) -> Tensor:
    """0.5 * reg * Σ‖W‖² over ``parameters``: L2 weight decay as a loss term, whose gradient
    reg * W is what ``weight_decay=reg`` adds inside the optimizers."""
    params = list(parameters)
    if not params:
        raise ValueError("l2_penalty: no parameters given")
    if reg < 0:
        raise ValueError(f"l2_penalty: reg must be non-negative, got {reg}")
    total = (params[0] * params[0]).sum()
    for p in params[1:]:
        total = total + (p * p).sum()
    return total * (0.5 * reg)
