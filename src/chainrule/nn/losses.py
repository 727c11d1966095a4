"""Loss modules: MSELoss, CrossEntropyLoss and SVMLoss (the CS231n multiclass hinge), each a
thin :class:`Module` over the function of the same name in :mod:`chainrule.nn.functional`."""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "SVMLoss"]


def _reduction(reduction: str, name: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


class MSELoss(Module):
    """Squared error between input and target (PyTorch's ``reduction``: mean, sum or none)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _reduction(reduction, "MSELoss")

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of raw scores against integer class labels."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _reduction(reduction, "CrossEntropyLoss")

    def forward(self, logits: Tensor, labels: Any) -> Tensor:
        return F.cross_entropy(logits, labels, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SVMLoss(Module):
    """Multiclass hinge: sum over wrong classes of max(0, s_j - s_y + margin)."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.margin = float(margin)
        self.reduction = _reduction(reduction, "SVMLoss")

    def forward(self, scores: Tensor, labels: Any) -> Tensor:
        return F.svm_loss(scores, labels, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"
