"""2-D pooling gates with PyTorch's semantics: ``max_pool2d`` (kernel, stride, padding, dilation,
``ceil_mode``, ``return_indices``) and ``avg_pool2d`` (kernel, stride, padding, ``ceil_mode``;
zero padding counted in the average unless ``count_include_pad=False``, or a fixed
``divisor_override``).

Max pooling routes: each window's gradient goes to the element that won the window (the first
maximum in row-major order on a tie, and a NaN wins, as in PyTorch). The forward records the
winner's offset in the window; the backward scatters the gradient to it (``max_pool2d_scatter``)
and the scatter's own backward gathers from the same offsets (``max_pool2d_gather``), so second
derivatives are exact. The winners' flat positions in each channel plane (``return_indices``)
come from a gate without gradient. Average pooling distributes: each element of a window gets
its share of the window's gradient; that distribution and the average are each other's adjoint.

With ``ceil_mode`` the last window along an axis may reach past the padded input (PyTorch's
ceiling rule): the kernels pad that overhang with -inf (max) or leave it out of the count (avg).

Every kernel loops over the K offsets of a window (one vectorized operation on a strided slice
of the whole batch per offset), never over pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._spatial import cropped, offset_slices, output_hw, overhang, padded, pair
from .mask import NoGradGate


def _geometry(shape: tuple, kernel_size, stride, padding, dilation, ceil_mode, gate="pool"):
    """Output size, each kernel offset's slices of the padded input, and the ceil_mode
    overhang past it."""
    hw = output_hw(shape, kernel_size, stride, padding, dilation, gate, ceil_mode)
    extra = overhang(shape, kernel_size, stride, padding, dilation, hw)
    return hw, offset_slices(kernel_size, stride, dilation, hw), extra


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    ceil_mode: bool = False,
) -> np.ndarray:
    """The window maxima (-inf padding; a NaN in a window makes its maximum NaN)."""
    _, slices, extra = _geometry(
        x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"
    )
    xp = padded(x, padding, -np.inf, extra)
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
    ceil_mode: bool = False,
) -> np.ndarray:
    """Zeros shaped like ``x`` with each window's ``g`` placed at the window's winner (``out`` is
    max_pool2d's output on ``x``)."""
    _, slices, extra = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp = padded(x, padding, -np.inf, extra)
    tiles = _covers(x.shape, kernel_size, stride, padding, dilation)
    dxp = (np.empty if tiles else np.zeros)(xp.shape, np.result_type(g, x))
    for (rows, cols), won in zip(slices, _winners(xp, out, slices)):
        if tiles:
            np.multiply(g, won, out=dxp[..., rows, cols])
        else:
            dxp[..., rows, cols] += g * won
    return np.ascontiguousarray(cropped(dxp, padding, extra))


def max_pool2d_gather(
    h: np.ndarray,
    x: np.ndarray,
    out: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Each window's element of ``h`` at the window's winner in ``x`` (the adjoint of
    :func:`max_pool2d_scatter`)."""
    _, slices, extra = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    hp, xp = padded(h, padding, 0.0, extra), padded(x, padding, -np.inf, extra)
    result = np.zeros(out.shape, np.result_type(h, x))
    for (rows, cols), won in zip(slices, _winners(xp, out, slices)):
        result += hp[..., rows, cols] * won
    return result


def max_pool2d_indices(
    x: np.ndarray,
    out: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Each window's winner as a flat index ``row * W + column`` into its channel plane of
    ``x`` (PyTorch's ``return_indices``), int64."""
    hw, slices, extra = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp = padded(x, padding, -np.inf, extra)
    rows0 = np.arange(hw[0])[:, None] * stride[0] - padding[0]
    cols0 = np.arange(hw[1]) * stride[1] - padding[1]
    width = x.shape[-1]
    result = np.zeros(out.shape, np.int64)
    for k, won in enumerate(_winners(xp, out, slices)):
        i, j = divmod(k, kernel_size[1])
        result += won * ((rows0 + i * dilation[0]) * width + cols0 + j * dilation[1])
    return result


def _share(
    hw: tuple, kernel_size, stride, padding, out_hw, count_include_pad, divisor_override, dtype
) -> Any:
    """What each window element contributes: 1/``divisor_override``, or 1/(the number of the
    window's elements inside the padded input, or without ``count_include_pad`` inside the
    input), per output position; ceil_mode's overhang never counts (PyTorch's divisors)."""
    if divisor_override is not None:
        return 1.0 / divisor_override
    extra = overhang(hw, kernel_size, stride, padding, (1, 1), out_hw)
    slices = offset_slices(kernel_size, stride, (1, 1), out_hw)
    if extra == (0, 0) and (count_include_pad or padding == (0, 0)):
        return 1.0 / len(slices)
    inside = padded(np.ones(hw), padding, float(count_include_pad), extra)
    inside[..., hw[0] + 2 * padding[0] :, :] = 0.0
    inside[..., hw[1] + 2 * padding[1] :] = 0.0
    count = sum(inside[rows, cols] for rows, cols in slices)
    return (1.0 / count).astype(dtype)


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Window means over the zero-padded input (the padding counts unless not
    ``count_include_pad``, as in PyTorch)."""
    hw, slices, extra = _geometry(
        x.shape, kernel_size, stride, padding, (1, 1), ceil_mode, "avg_pool2d"
    )
    xp = padded(x, padding, 0.0, extra)
    rows, cols = slices[0]
    out = xp[..., rows, cols].copy()
    for rows, cols in slices[1:]:
        out += xp[..., rows, cols]
    out *= _share(
        x.shape[-2:],
        kernel_size,
        stride,
        padding,
        hw,
        count_include_pad,
        divisor_override,
        out.dtype,
    )
    return out


def avg_pool2d_scatter(
    g: np.ndarray,
    *,
    shape: tuple,
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Each window's ``g`` times its share added to every element of the window (avg_pool2d's
    adjoint)."""
    hw, slices, extra = _geometry(shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    h, w = shape[-2:]
    dxp = np.zeros(
        (*shape[:-2], h + 2 * padding[0] + extra[0], w + 2 * padding[1] + extra[1]), g.dtype
    )
    share = g * _share(
        shape[-2:], kernel_size, stride, padding, hw, count_include_pad, divisor_override, g.dtype
    )
    for rows, cols in slices:
        dxp[..., rows, cols] += share
    return np.ascontiguousarray(cropped(dxp, padding, extra))


_OPTIONS = "kernel_size={kernel_size}, stride={stride}, padding={padding}, ceil_mode={ceil_mode}"
_MAX = _OPTIONS + ", dilation={dilation})"
_AVG = _OPTIONS + ", count_include_pad={count_include_pad}, divisor_override={divisor_override})"


class MaxPool2d(Gate):
    """Window maxima; the gradient is routed to each window's winner."""

    name = "max_pool2d"
    symbol = "maxpool"
    pattern = "max routes"
    forward_code = "max_pool2d_forward({0}, " + _MAX

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
    forward_code = "max_pool2d_scatter({0}, {1}, {2}, " + _MAX

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
    forward_code = "max_pool2d_gather({0}, {1}, {2}, " + _MAX

    @staticmethod
    def forward(ctx, h, x, out, **options):
        ctx.save_for_backward(x, out)
        return max_pool2d_gather(h, x, out, **options)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return MaxPool2dScatter.apply(grad, x, out, **ctx.options), None, None


class MaxPool2dIndices(NoGradGate):
    """Where each window's maximum sits: flat indices into the channel plane (no gradient)."""

    name = "max_pool2d_indices"
    symbol = "argmax"
    forward_code = "max_pool2d_indices({0}, {1}, " + _MAX

    @staticmethod
    def forward(ctx, x, out, **options):
        return max_pool2d_indices(x, out, **options)


class AvgPool2d(Gate):
    """Window means; each element of a window receives its share of the window's gradient."""

    name = "avg_pool2d"
    symbol = "avgpool"
    forward_code = "avg_pool2d_forward({0}, " + _AVG

    @staticmethod
    def forward(ctx, x, **options):
        return avg_pool2d_forward(x, **options)

    @staticmethod
    def backward(ctx, grad):
        shape = np.shape(ctx.inputs[0].data)
        return (AvgPool2dScatter.apply(grad, shape=shape, **ctx.options),)


class AvgPool2dScatter(Gate):
    """Average pooling's backward (each window's share into every window element); its
    adjoint is the average itself."""

    name = "avg_pool2d_scatter"
    symbol = "avgpoolᵀ"
    forward_code = "avg_pool2d_scatter({0}, shape={shape}, " + _AVG

    @staticmethod
    def forward(ctx, g, **options):
        return avg_pool2d_scatter(g, **options)

    @staticmethod
    def backward(ctx, grad):
        options = dict(ctx.options)
        del options["shape"]
        return (AvgPool2d.apply(grad, **options),)


def _pool_options(
    x: Any, kernel_size, stride, padding, dilation, ceil_mode, gate: str
) -> tuple[dict, tuple]:
    """The gate's options, checked (naming the gate) and normalized, and the dilation."""
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
    dilation = pair(dilation, "dilation", gate)
    output_hw(shape, kernel, stride, pad, dilation, gate, bool(ceil_mode))
    return {
        "kernel_size": kernel,
        "stride": stride,
        "padding": pad,
        "ceil_mode": bool(ceil_mode),
    }, dilation


def max_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max over each ``kernel_size`` window (PyTorch's ``max_pool2d``; ``stride`` defaults to the
    kernel size, padding is -inf; ``ceil_mode`` keeps a last partial window); ties go to the
    first maximum, a NaN wins. With ``return_indices`` also each maximum's flat index in its
    channel plane (int64, without gradient), as PyTorch returns them."""
    options, options["dilation"] = _pool_options(
        x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"
    )
    out = MaxPool2d.apply(x, **options)
    if not return_indices:
        return out
    return out, MaxPool2dIndices.apply(x, out, **options)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Any:
    """Mean over each ``kernel_size`` window (PyTorch's ``avg_pool2d``, its argument order;
    ``ceil_mode`` keeps a last partial window; zero padding counts in the mean unless
    ``count_include_pad`` is False; ``divisor_override`` divides every window sum by it)."""
    options, _ = _pool_options(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if divisor_override is not None and (
        not isinstance(divisor_override, (int, np.integer))
        or isinstance(divisor_override, bool)
        or divisor_override == 0
    ):
        raise GateError(
            f"gate 'avg_pool2d': divisor_override must be a nonzero int, got {divisor_override!r}"
        )
    return AvgPool2d.apply(
        x,
        **options,
        count_include_pad=bool(count_include_pad),
        divisor_override=None if divisor_override is None else int(divisor_override),
    )
