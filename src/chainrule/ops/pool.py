"""2-D pooling gates with PyTorch's semantics: ``max_pool2d`` (kernel, stride, padding, dilation)
and ``avg_pool2d`` (kernel, stride, padding; zero padding counted in the average unless
``count_include_pad=False``).

Max pooling routes: each window's gradient goes to the element that won the window (the first
maximum in row-major order on a tie, and a NaN wins, as in PyTorch). The forward records the
winner's offset in the window; the backward scatters the gradient to it (``max_pool2d_scatter``)
and the scatter's own backward gathers from the same offsets (``max_pool2d_gather``), so second
derivatives are exact. Average pooling distributes: each element of a window gets 1/K of the
window's gradient; that distribution and the average are each other's adjoint.

Every kernel loops over the K offsets of a window (one vectorized operation on a strided slice
of the whole batch per offset), never over pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._spatial import cropped, offset_slices, output_hw, padded, pair


def _geometry(shape: tuple, kernel_size, stride, padding, dilation, gate: str):
    hw = output_hw(shape, kernel_size, stride, padding, dilation, gate)
    return hw, offset_slices(kernel_size, stride, dilation, hw)


def max_pool2d_forward(
    x: np.ndarray, *, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> np.ndarray:
    """The window maxima (-inf padding; a NaN in a window makes its maximum NaN)."""
    _, slices = _geometry(x.shape, kernel_size, stride, padding, dilation, "max_pool2d")
    xp = padded(x, padding, -np.inf)
    rows, cols = slices[0]
    out = xp[..., rows, cols].copy()
    for rows, cols in slices[1:]:
        np.maximum(out, xp[..., rows, cols], out=out)
    return out


def _winners(xp: np.ndarray, out: np.ndarray, slices: list):
    """For each window offset, a mask of the windows it wins: the first offset (row-major)
    holding the maximum, or the last NaN of a window with NaNs (PyTorch's rule)."""
    if np.isnan(out.sum()):  # a NaN somewhere (or +inf and -inf): the exact, slower rule
        idx = np.zeros(out.shape, np.int32)
        best = xp[..., slices[0][0], slices[0][1]].copy()
        for k, (rows, cols) in enumerate(slices[1:], 1):
            s = xp[..., rows, cols]
            better = (s > best) | np.isnan(s)
            np.copyto(best, s, where=better)
            idx[better] = k
        for k in range(len(slices)):
            yield idx == k
        return
    taken = None
    for rows, cols in slices:
        won = xp[..., rows, cols] == out
        if taken is None:
            taken = won.copy()
        else:
            np.greater(won, taken, out=won)  # won and not taken, without a temporary
            taken |= won
        yield won


def _covers(shape: tuple, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """Whether the windows tile the input exactly (each element in exactly one window)."""
    return (
        stride == kernel_size
        and padding == (0, 0)
        and dilation == (1, 1)
        and shape[-2] % kernel_size[0] == 0
        and shape[-1] % kernel_size[1] == 0
    )


def max_pool2d_scatter(
    g: np.ndarray,
    x: np.ndarray,
    out: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
) -> np.ndarray:
    """Zeros shaped like ``x`` with each window's ``g`` placed at the window's winner (``out`` is
    max_pool2d's output on ``x``)."""
    slices = offset_slices(kernel_size, stride, dilation, out.shape[-2:])
    xp = padded(x, padding, -np.inf)
    tiles = _covers(x.shape, kernel_size, stride, padding, dilation)
    dxp = (np.empty if tiles else np.zeros)(xp.shape, np.result_type(g, x))
    for (rows, cols), won in zip(slices, _winners(xp, out, slices)):
        if tiles:
            np.multiply(g, won, out=dxp[..., rows, cols])
        else:
            dxp[..., rows, cols] += g * won
    return np.ascontiguousarray(cropped(dxp, padding))


def max_pool2d_gather(
    h: np.ndarray,
    x: np.ndarray,
    out: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
) -> np.ndarray:
    """Each window's element of ``h`` at the window's winner in ``x`` (the adjoint of
    :func:`max_pool2d_scatter`)."""
    slices = offset_slices(kernel_size, stride, dilation, out.shape[-2:])
    hp, xp = padded(h, padding), padded(x, padding, -np.inf)
    result = np.zeros(out.shape, np.result_type(h, x))
    for (rows, cols), won in zip(slices, _winners(xp, out, slices)):
        result += hp[..., rows, cols] * won
    return result


def _share(hw: tuple, kernel_size, stride, padding, out_hw, count_include_pad, dtype) -> Any:
    """What each window element contributes: 1/K, or without ``count_include_pad`` 1/(the number
    of the window's elements inside the input), per output position."""
    slices = offset_slices(kernel_size, stride, (1, 1), out_hw)
    if count_include_pad or padding == (0, 0):
        return 1.0 / len(slices)
    inside = padded(np.ones(hw), padding)
    count = sum(inside[rows, cols] for rows, cols in slices)
    return (1.0 / count).astype(dtype)


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Window means over the zero-padded input (the padding counts unless not
    ``count_include_pad``, as in PyTorch)."""
    hw, slices = _geometry(x.shape, kernel_size, stride, padding, (1, 1), "avg_pool2d")
    xp = padded(x, padding)
    rows, cols = slices[0]
    out = xp[..., rows, cols].copy()
    for rows, cols in slices[1:]:
        out += xp[..., rows, cols]
    out *= _share(x.shape[-2:], kernel_size, stride, padding, hw, count_include_pad, out.dtype)
    return out


def avg_pool2d_scatter(
    g: np.ndarray,
    *,
    shape: tuple,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Each window's ``g`` times its share added to every element of the window (avg_pool2d's
    adjoint)."""
    hw = g.shape[-2:]
    slices = offset_slices(kernel_size, stride, (1, 1), hw)
    dxp = np.zeros((*shape[:-2], shape[-2] + 2 * padding[0], shape[-1] + 2 * padding[1]), g.dtype)
    share = g * _share(shape[-2:], kernel_size, stride, padding, hw, count_include_pad, g.dtype)
    for rows, cols in slices:
        dxp[..., rows, cols] += share
    return np.ascontiguousarray(cropped(dxp, padding))


_OPTIONS = "kernel_size={kernel_size}, stride={stride}, padding={padding}"


class MaxPool2d(Gate):
    """Window maxima; the gradient is routed to each window's winner."""

    name = "max_pool2d"
    symbol = "maxpool"
    pattern = "max routes"
    forward_code = "max_pool2d_forward({0}, " + _OPTIONS + ", dilation={dilation})"

    @staticmethod
    def forward(ctx, x, **options):
        out = max_pool2d_forward(x, **options)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return (MaxPool2dScatter.apply(grad, x, out, **ctx.options),)


class MaxPool2dScatter(Gate):
    """Max pooling's backward: the gradient placed at each window's winner, found from the
    pooled input and output (routing inputs without gradient). Linear in the gradient; its own
    gradient gathers from the winners."""

    name = "max_pool2d_scatter"
    symbol = "unpool"
    pattern = "max routes"
    forward_code = "max_pool2d_scatter({0}, {1}, {2}, " + _OPTIONS + ", dilation={dilation})"

    @staticmethod
    def forward(ctx, g, x, out, **options):
        ctx.save_for_backward(x, out)
        return max_pool2d_scatter(g, x, out, **options)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return MaxPool2dGather.apply(grad, x, out, **ctx.options), None, None


class MaxPool2dGather(Gate):
    """Each window's element at its winner's position; the adjoint of the scatter."""

    name = "max_pool2d_gather"
    symbol = "gather"
    forward_code = "max_pool2d_gather({0}, {1}, {2}, " + _OPTIONS + ", dilation={dilation})"

    @staticmethod
    def forward(ctx, h, x, out, **options):
        ctx.save_for_backward(x, out)
        return max_pool2d_gather(h, x, out, **options)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return MaxPool2dScatter.apply(grad, x, out, **ctx.options), None, None


class AvgPool2d(Gate):
    """Window means; each element of a window receives 1/K of the window's gradient."""

    name = "avg_pool2d"
    symbol = "avgpool"
    forward_code = (
        "avg_pool2d_forward({0}, " + _OPTIONS + ", count_include_pad={count_include_pad})"
    )

    @staticmethod
    def forward(ctx, x, **options):
        return avg_pool2d_forward(x, **options)

    @staticmethod
    def backward(ctx, grad):
        shape = np.shape(ctx.inputs[0].data)
        return (AvgPool2dScatter.apply(grad, shape=shape, **ctx.options),)


class AvgPool2dScatter(Gate):
    """Average pooling's backward (g / K into every window element); its adjoint is the
    average itself."""

    name = "avg_pool2d_scatter"
    symbol = "avgpoolᵀ"
    forward_code = (
        "avg_pool2d_scatter({0}, shape={shape}, "
        + _OPTIONS
        + ", count_include_pad={count_include_pad})"
    )

    @staticmethod
    def forward(ctx, g, **options):
        return avg_pool2d_scatter(g, **options)

    @staticmethod
    def backward(ctx, grad):
        options = dict(ctx.options)
        del options["shape"]
        return (AvgPool2d.apply(grad, **options),)


def _pool_options(x: Any, kernel_size, stride, padding, gate: str) -> tuple[tuple, dict]:
    shape = x.data.shape if isinstance(x, Node) else np.shape(x)
    if len(shape) not in (3, 4):
        raise GateError(f"gate '{gate}': input must be 3-D or 4-D (N, C, H, W), got shape {shape}")
    kernel = pair(kernel_size, "kernel_size", gate)
    stride = kernel if stride is None else pair(stride, "stride", gate)
    pad = pair(padding, "padding", gate, minimum=0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise GateError(
            f"gate '{gate}': padding {pad} must be at most half the kernel size {kernel}"
        )
    return shape, {"kernel_size": kernel, "stride": stride, "padding": pad}


def max_pool2d(
    x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
) -> Any:
    """Max over each ``kernel_size`` window (PyTorch's ``max_pool2d``; ``stride`` defaults to the
    kernel size, padding is -inf); ties go to the first maximum, a NaN wins."""
    shape, options = _pool_options(x, kernel_size, stride, padding, "max_pool2d")
    options["dilation"] = pair(dilation, "dilation", "max_pool2d")
    output_hw(shape, *options.values(), "max_pool2d")
    return MaxPool2d.apply(x, **options)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
) -> Any:
    """Mean over each ``kernel_size`` window (PyTorch's ``avg_pool2d``; zero padding counts in
    the mean unless ``count_include_pad`` is False)."""
    shape, options = _pool_options(x, kernel_size, stride, padding, "avg_pool2d")
    output_hw(shape, *options.values(), (1, 1), "avg_pool2d")
    return AvgPool2d.apply(x, **options, count_include_pad=bool(count_include_pad))
