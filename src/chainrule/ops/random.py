"""Random gates: values drawn from a random stream, recorded so that readers see where they come
from, with no gradient.

A random value computed in NumPy and multiplied in would be a constant of the circuit, and
``cr.stage`` would freeze it at its traced draw. As a gate it is a stage of its own: staged code
calls the same kernel, which draws again at each call. The stream is the gate's ``generator``
option: a ``np.random.Generator`` (staged code binds that very object, so each staged call
continues its stream), an int seed (a fresh generator seeded with it at each call, hence the same
draw each time), or None (the library's default generator at the time of the call, which
``cr.nn.init.manual_seed`` reseeds).

This module owns that default generator. A random gate's forward is never run twice for one
output: its output needs no gradient, so backward never releases its (empty) cache and readers
never recompute it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError
from .mask import NoGradGate

__all__ = ["DropoutMask", "default_generator", "dropout_mask", "manual_seed"]

_default = [np.random.default_rng()]


def default_generator() -> np.random.Generator:
    """The library's default random stream, used by layers, initializers and random gates given
    neither a seed nor a generator."""
    return _default[0]


def manual_seed(seed: int) -> None:
    """Reseed the default generator used by layers, initializers and random gates given no seed
    (like ``torch.manual_seed``)."""
    _default[0] = np.random.default_rng(seed)


def _stream(generator: Any) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        return _default[0]
    return np.random.default_rng(generator)


def dropout_mask_forward(x: Any, p: float, generator: Any) -> np.ndarray:
    """Inverted dropout's scaled keep-mask for ``x``: each element ``1/(1-p)`` with probability
    ``1-p`` (drawn ``random() >= p``), else 0, in ``x``'s dtype (the gate's forward and its
    staged code)."""
    x = np.asarray(x)
    keep = _stream(generator).random(x.shape) >= p
    return (keep / (1.0 - p)).astype(x.dtype)


class DropoutMask(NoGradGate):
    """Inverted dropout's scaled keep-mask, shaped like its input and drawn at each application
    (at each call of staged code too): multiply by it to drop."""

    name = "dropout_mask"
    symbol = "mask"
    forward_code = "dropout_mask_forward({0}, {p}, {generator})"

    @staticmethod
    def forward(ctx, x, *, p, generator):
        return dropout_mask_forward(x, p, generator)


def dropout_mask(x: Any, p: float, generator: np.random.Generator | int | None = None) -> Any:
    """The scaled keep-mask ``(random(x.shape) >= p) / (1 - p)`` in ``x``'s dtype, as a gate
    without gradient (recorded when ``x`` is part of a circuit). ``generator`` is a
    ``np.random.Generator``, an int seed or None for the default generator (see the module)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise GateError(f"gate 'dropout_mask': probability must be a number, got {p!r}")
    if not 0.0 <= p < 1.0:
        raise GateError(f"gate 'dropout_mask': probability must be in [0, 1), got {p}")
    if not (
        generator is None
        or isinstance(generator, np.random.Generator)
        or (isinstance(generator, (int, np.integer)) and not isinstance(generator, bool))
    ):
        raise GateError(
            "gate 'dropout_mask': generator must be a numpy.random.Generator, an int seed or "
            f"None, got {type(generator).__name__}"
        )
    if isinstance(generator, np.integer):
        generator = int(generator)
    if isinstance(generator, int) and generator < 0:
        raise GateError(f"gate 'dropout_mask': a seed must be non-negative, got {generator}")
    return DropoutMask.apply(x, p=float(p), generator=generator)
