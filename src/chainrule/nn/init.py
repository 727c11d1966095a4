"""Weight initializers (Glorot/Xavier and He/Kaiming, normal and uniform), seeded.

Each fills a parameter in place and returns it, as ``torch.nn.init`` does. Randomness comes from
``generator`` if given, else from a fresh generator seeded with ``seed``, else from the library's
default generator (:mod:`chainrule.ops.random`, shared with dropout), which :func:`manual_seed`
resets (like ``torch.manual_seed``).
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.random import default_generator, manual_seed
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "get_generator",
    "kaiming_normal_",
    "kaiming_uniform_",
    "manual_seed",
    "uniform_",
    "normal_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def get_generator(
    seed: int | None = None, generator: np.random.Generator | None = None
) -> np.random.Generator:
    """``generator``, or a new one seeded with ``seed``, or the library's default generator."""
    if generator is not None and seed is not None:
        raise ValueError("give either seed or generator, not both")
    if generator is not None:
        return generator
    if seed is not None:
        return np.random.default_rng(seed)
    return default_generator()


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's values)."""
    if nonlinearity in ("linear", "sigmoid", "conv1d", "conv2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r} (use linear, sigmoid, tanh, "
        "relu or leaky_relu)"
    )


def _fans(tensor: Tensor) -> tuple[int, int]:
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a tensor of at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    np.copyto(tensor.data, values, casting="unsafe")
    return tensor


def uniform_(
    tensor: Tensor,
    a: float = 0.0,
    b: float = 1.0,
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with samples from U(a, b)."""
    rng = get_generator(seed, generator)
    return _fill(tensor, rng.uniform(a, b, tensor.shape))


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with samples from N(mean, std²)."""
    rng = get_generator(seed, generator)
    return _fill(tensor, mean + std * rng.standard_normal(tensor.shape))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    tensor.data[...] = 0
    return tensor


def xavier_uniform_(
    tensor: Tensor,
    gain: float = 1.0,
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, seed=seed, generator=generator)


def xavier_normal_(
    tensor: Tensor,
    gain: float = 1.0,
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Glorot normal: N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, seed=seed, generator=generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan) (PyTorch's defaults)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, seed=seed, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He normal: N(0, std²) with std = gain / sqrt(fan) (PyTorch's defaults)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, seed=seed, generator=generator)
