"""Layers: Linear (the affine map), Sequential (a chain of modules), Dropout, Maxout and Identity.

Parameter shapes and names follow PyTorch (``Linear.weight`` is (out_features, in_features);
``Sequential`` children are ``"0"``, ``"1"``, ...), so state dicts carry over as plain arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Dropout", "Identity", "Linear", "Maxout", "Sequential"]


def _positive(value: Any, what: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer}: {what} must be a positive integer, got {value!r}")
    return int(value)


class Linear(Module):
    """y = x @ Wᵀ + b with W of shape (out_features, in_features).

    Initialized as PyTorch does: W and b uniform in ±1/sqrt(in_features), drawn from
    ``generator`` / ``seed`` (or the default generator of :mod:`chainrule.nn.init`).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "in_features", "Linear")
        self.out_features = _positive(out_features, "out_features", "Linear")
        rng = init.get_generator(seed, generator)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), dtype=dtype))
        init.uniform_(self.weight, -bound, bound, generator=rng)
        if bias:
            self.bias = Parameter(np.zeros(self.out_features, dtype=dtype))
            init.uniform_(self.bias, -bound, bound, generator=rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", ... (or by a mapping)."""

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self._add(str(name), module)
        else:
            for module in modules:
                self.append(module)

    def _add(self, name: str, module: Any) -> None:
        if not isinstance(module, Module):
            raise TypeError(
                f"Sequential: element {name!r} is a {type(module).__name__}, not a cr.nn.Module"
            )
        self.add_module(name, module)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end, named by its position."""
        self._add(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        try:
            return modules[index]
        except IndexError:
            raise IndexError(
                f"Sequential: index {index} is out of range for {len(modules)} module(s)"
            ) from None

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x


class Dropout(Module):
    """Inverted dropout with drop probability ``p`` while training; the identity in eval mode."""

    def __init__(
        self,
        p: float = 0.5,
        *,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability must be in [0, 1], got {p}")
        self.p = float(p)
        self._rng = init.get_generator(seed, generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, generator=self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Maxout(Module):
    """Maxout units (Goodfellow et al.): ``pieces`` affine maps per output, keep the largest.

    ``weight`` has shape (out_features * pieces, in_features); rows ``j * pieces ... j * pieces +
    pieces - 1`` are output j's pieces. Ties share the gradient equally.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pieces: int,
        bias: bool = True,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "in_features", "Maxout")
        self.out_features = _positive(out_features, "out_features", "Maxout")
        self.pieces = _positive(pieces, "pieces", "Maxout")
        rows = self.out_features * self.pieces
        rng = init.get_generator(seed, generator)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(np.zeros((rows, self.in_features), dtype=dtype))
        init.uniform_(self.weight, -bound, bound, generator=rng)
        if bias:
            self.bias = Parameter(np.zeros(rows, dtype=dtype))
            init.uniform_(self.bias, -bound, bound, generator=rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        z = F.linear(x, self.weight, self.bias)
        lead = z.shape[:-1]
        return z.reshape(*lead, self.out_features, self.pieces).max(axis=-1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"pieces={self.pieces}, bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a layer switched off by a flag);
    accepts and ignores any constructor arguments, as PyTorch's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x
