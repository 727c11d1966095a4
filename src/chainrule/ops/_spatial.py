"""NumPy kernels shared by the spatial gates (convolution, pooling): argument normalization,
output sizes, and the windows of a padded image as strided views.

Every kernel loops in Python over the kernel's offsets (at most KH * KW iterations), never over
pixels: each iteration is one vectorized NumPy operation on a strided slice of the whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError


def pair(value: Any, what: str, gate: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints as a pair of Python ints, each at least ``minimum``."""
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in items
    ):
        raise GateError(
            f"gate '{gate}': {what} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return int(items[0]), int(items[1])


def out_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool = False
) -> int:
    """Output length along one spatial axis: PyTorch's floor rule, or with ``ceil_mode`` its
    ceiling rule (a last, partial window is kept when it starts inside the input or the
    leading padding; one starting in the trailing padding is dropped)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def output_hw(
    shape: tuple,
    kernel: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    gate: str,
    ceil_mode: bool = False,
) -> tuple[int, int]:
    """(OH, OW) for an input of ``shape`` (..., H, W); refuses an empty output by name."""
    h, w = shape[-2:]
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise GateError(
            f"gate '{gate}': input of spatial size {h}x{w} with padding {padding} is smaller than "
            f"the (dilated) kernel {kernel} with dilation {dilation}; the output would be empty"
        )
    return oh, ow


def overhang(
    shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple, out_hw: tuple
) -> tuple[int, int]:
    """How far (rows, columns) the last window reaches past the padded input: nonzero only
    for ``ceil_mode``'s partial windows."""
    return tuple(
        max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
        for n, k, s, p, d, o in zip(shape[-2:], kernel, stride, padding, dilation, out_hw)
    )


def padded(x: np.ndarray, padding: tuple, value: float = 0.0, extra: tuple = (0, 0)) -> np.ndarray:
    """``x`` (N, C, H, W) with ``padding`` rows and columns of ``value`` on each side, and
    ``extra`` more rows and columns of it after the end (for :func:`overhang`)."""
    (ph, pw), (eh, ew) = padding, extra
    if not ph and not pw and not eh and not ew:
        return x
    h, w = x.shape[-2:]
    out = np.full((*x.shape[:-2], h + 2 * ph + eh, w + 2 * pw + ew), value, x.dtype)
    out[..., ph : ph + h, pw : pw + w] = x
    return out


def cropped(xp: np.ndarray, padding: tuple, extra: tuple = (0, 0)) -> np.ndarray:
    """The inverse of :func:`padded`: the interior of ``xp``."""
    (ph, pw), (eh, ew) = padding, extra
    if not ph and not pw and not eh and not ew:
        return xp
    return xp[..., ph : xp.shape[-2] - ph - eh, pw : xp.shape[-1] - pw - ew]


def offset_slices(
    kernel: tuple, stride: tuple, dilation: tuple, out_hw: tuple
) -> list[tuple[slice, slice]]:
    """For each kernel offset (row-major), the (rows, cols) slices of the padded input that it
    meets across all output positions."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    return [
        (
            slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw),
        )
        for i in range(kh)
        for j in range(kw)
    ]


def windows(xp: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, out_hw: tuple):
    """A read-only strided view (N, C, KH, KW, OH, OW) of the padded input's windows."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        (n, c, kernel[0], kernel[1], out_hw[0], out_hw[1]),
        (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]),
        writeable=False,
    )
