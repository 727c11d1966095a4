"""The course's two networks as ready-made modules (PyTorch's layers, the course's names):

- ``ThreeLayerConvNet``: conv - relu - 2x2 max pool - affine - relu - affine;
- ``FullyConnectedNet``: {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine.

Both are :class:`Sequential` chains, so their state-dict keys are PyTorch's ("0.weight", ...),
and both return class scores for softmax cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import init
from .activations import ReLU
from .conv import Conv2d, Flatten, MaxPool2d
from .layers import Dropout, Linear, Sequential
from .norm import BatchNorm1d, LayerNorm

__all__ = ["FullyConnectedNet", "ThreeLayerConvNet"]

NORMALIZATIONS = (None, "batchnorm", "layernorm")


class ThreeLayerConvNet(Sequential):
    """conv (``num_filters`` filters of ``filter_size``, padded to keep the size) - relu - 2x2
    max pool - affine (``hidden_dim``) - relu - affine (``num_classes``), on (N, C, H, W)
    inputs of ``input_dim`` = (C, H, W)."""

    def __init__(
        self,
        input_dim: Sequence[int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        c, h, w = input_dim
        if filter_size % 2 == 0:
            raise ValueError(
                f"ThreeLayerConvNet: filter_size must be odd (padded to keep the size), "
                f"got {filter_size}"
            )
        rng = init.get_generator(seed, generator)
        pooled = num_filters * (h // 2) * (w // 2)
        super().__init__(
            Conv2d(
                c, num_filters, filter_size, padding=filter_size // 2, dtype=dtype, generator=rng
            ),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Linear(pooled, hidden_dim, dtype=dtype, generator=rng),
            ReLU(),
            Linear(hidden_dim, num_classes, dtype=dtype, generator=rng),
        )


class FullyConnectedNet(Sequential):
    """Hidden layers of ``hidden_dims`` units, each affine - [norm] - relu - [dropout], then an
    affine layer to ``num_classes`` scores. ``normalization`` is None, "batchnorm" or
    "layernorm"; ``dropout`` is the probability of dropping a unit (0 for none)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        num_classes: int = 10,
        normalization: str | None = None,
        dropout: float = 0.0,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"FullyConnectedNet: normalization must be one of {NORMALIZATIONS}, got "
                f"{normalization!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"FullyConnectedNet: dropout must be in [0, 1), got {dropout}")
        rng = init.get_generator(seed, generator)
        layers: list = []
        width = int(math.prod(np.atleast_1d(input_dim)))
        for hidden in hidden_dims:
            layers.append(Linear(width, hidden, dtype=dtype, generator=rng))
            if normalization == "batchnorm":
                layers.append(BatchNorm1d(hidden, dtype=dtype))
            elif normalization == "layernorm":
                layers.append(LayerNorm(hidden, dtype=dtype))
            layers.append(ReLU())
            if dropout:
                layers.append(Dropout(dropout, generator=rng))
            width = hidden
        layers.append(Linear(width, num_classes, dtype=dtype, generator=rng))
        super().__init__(*layers)
