"""Embedding and recurrent cells with PyTorch's names, parameter shapes and initialization,
composed of existing gates (indexing, the affine gate, sigmoid, tanh), so their backward is the
backward of those gates: ``Embedding``, ``RNNCell`` and ``LSTMCell``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import ops
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import _positive
from .module import Module, Parameter

__all__ = ["Embedding", "LSTMCell", "RNNCell"]


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` (num_embeddings, embedding_dim) for each integer
    index ``i``. Rows are initialized N(0, 1); the ``padding_idx`` row is zero and receives no
    gradient."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"{num_embeddings} embeddings"
                )
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        rng = init.get_generator(seed, generator)
        weight = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight)

    def forward(self, indices: Any) -> Tensor:
        idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            bad = idx[(idx < 0) | (idx >= self.num_embeddings)].flat[0]
            raise IndexError(
                f"Embedding: index {int(bad)} is out of range for {self.num_embeddings} embeddings"
            )
        out = self.weight[idx]
        if self.padding_idx is not None:
            out = out * (idx != self.padding_idx)[..., None].astype(self.weight.dtype)
        return out

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class _Cell(Module):
    """Parameters of a recurrent cell with ``chunks`` gates: weight_ih (chunks*H, I),
    weight_hh (chunks*H, H), biases (chunks*H,), all uniform in ±1/sqrt(H) as PyTorch."""

    def __init__(self, input_size, hidden_size, bias, chunks, dtype, seed, generator) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive(input_size, "input_size", name)
        self.hidden_size = _positive(hidden_size, "hidden_size", name)
        rng = init.get_generator(seed, generator)
        bound = 1.0 / math.sqrt(self.hidden_size)
        rows = chunks * self.hidden_size
        shapes = {"weight_ih": (rows, self.input_size), "weight_hh": (rows, self.hidden_size)}
        if bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        for pname, shape in shapes.items():
            setattr(self, pname, Parameter(rng.uniform(-bound, bound, shape).astype(dtype)))
        if not bias:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def _state(self, x: Any) -> tuple[Any, bool]:
        """The input as a batch (a 1-D input is one sample) and whether it was unbatched."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input of shape {x.shape} does not fit input_size "
                f"{self.input_size} (expected (N, {self.input_size}) or ({self.input_size},))"
            )
        return (x.reshape(1, -1), True) if x.ndim == 1 else (x, False)

    def _zeros(self, x: Tensor) -> np.ndarray:
        return np.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)

    def _pre(self, x: Tensor, h: Any) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


def _batched(h: Any, unbatched: bool) -> Any:
    return None if h is None else (h.reshape(1, -1) if unbatched else h)


class RNNCell(_Cell):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu with ``nonlinearity="relu"``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, 1, dtype, seed, generator)
        self.nonlinearity = nonlinearity

    def forward(self, x: Any, hx: Any = None) -> Tensor:
        x, unbatched = self._state(x)
        h = _batched(hx, unbatched)
        pre = self._pre(x, self._zeros(x) if h is None else h)
        out = ops.tanh(pre) if self.nonlinearity == "tanh" else ops.relu(pre)
        return out.reshape(-1) if unbatched else out


class LSTMCell(_Cell):
    """The LSTM step: input, forget, cell and output gates from one affine map of (x, h) (in
    PyTorch's order i, f, g, o); c' = f c + i g and h' = o tanh(c')."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, dtype, seed, generator)

    def forward(self, x: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._state(x)
        if hx is None:
            h = c = self._zeros(x)
        else:
            h, c = (_batched(v, unbatched) for v in hx)
        i, f, g, o = ops.split(self._pre(x, h), 4, axis=1)
        c2 = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h2 = ops.sigmoid(o) * ops.tanh(c2)
        if unbatched:
            return h2.reshape(-1), c2.reshape(-1)
        return h2, c2
