"""2-D convolution (PyTorch's ``conv2d``: cross-correlation with stride, padding, dilation and
groups) as three gates that differentiate each other.

The notes' rule for a product applies: a convolution is bilinear in its input and its filters,
so each gradient is another convolution-like product of the upstream gradient with the *other*
operand. ``conv2d(x, W)`` sends back ``dx = conv2d_input_grad(g, W)`` (the transposed
convolution) and ``dW = conv2d_weight_grad(x, g)`` (the input's windows times the gradient); both
are gates whose own backward is again one of the three, so second derivatives are exact.

The kernels use im2col: the windows of a block of samples are copied into columns (a strided
view, one copy) and multiplied by the filters in one matrix product per block (and group); the
backward multiplies by the transposed filters and adds the columns back one kernel offset at a
time. No Python loop runs over pixels, and small images make few, large products (a whole
mini-batch of 8x8 digits is one product) rather than one small product per sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import GateError, Node
from ..gate import Gate
from ._spatial import cropped, offset_slices, output_hw, padded, pair, windows
from ._util import raw

# im2col columns per block, in elements: 2**20 (8 MB of float64) keeps a block's columns and its
# product in cache-friendly sizes. The course's layer (3 channels, 7x7 filters, 32x32 images)
# takes 6 samples per block; small images (8x8 digits) take the whole mini-batch in one product.
_BLOCK_ELEMENTS = 1 << 20


def _step(n: int, per_sample: int) -> int:
    return max(1, min(n, _BLOCK_ELEMENTS // max(per_sample, 1)))


def _columns(view: np.ndarray, n0: int, step: int, groups: int) -> np.ndarray:
    """im2col of samples n0 .. n0 + step: (groups, C/groups * KH * KW, B * OH * OW), one copy
    of the strided windows (N, C, KH, KW, OH, OW), so each group's product is one matrix
    product over the whole block."""
    block = view[n0 : n0 + step].transpose(1, 2, 3, 0, 4, 5)
    c, kh, kw, b, oh, ow = block.shape
    return block.reshape(groups, (c // groups) * kh * kw, b * oh * ow)


def _rows(g: np.ndarray, n0: int, step: int, groups: int) -> np.ndarray:
    """The output-shaped ``g`` of samples n0 .. n0 + step as (groups, F/groups, B * OH * OW)."""
    block = g[n0 : n0 + step].transpose(1, 0, 2, 3)
    f, b, oh, ow = block.shape
    return block.reshape(groups, f // groups, b * oh * ow)


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
) -> np.ndarray:
    """out[n, f] = sum over the group's channels and the kernel of x's window times w[f] (+ b[f]);
    x (N, C, H, W), w (F, C/groups, KH, KW)."""
    n, c = x.shape[:2]
    f, cg, kh, kw = w.shape
    oh, ow = output_hw(x.shape, (kh, kw), stride, padding, dilation, "conv2d")
    view = windows(padded(x, padding), (kh, kw), stride, dilation, (oh, ow))
    out = np.empty((n, f, oh, ow), np.result_type(x, w))
    w2 = w.reshape(groups, f // groups, cg * kh * kw)
    step = _step(n, c * kh * kw * oh * ow)
    for n0 in range(0, n, step):
        product = np.matmul(w2, _columns(view, n0, step, groups))
        out[n0 : n0 + step] = product.reshape(f, -1, oh, ow).transpose(1, 0, 2, 3)
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    return out


def conv2d_input_grad(
    g: np.ndarray,
    w: np.ndarray,
    *,
    shape: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
) -> np.ndarray:
    """The transposed convolution: the gradient on an input of ``shape`` from the gradient ``g``
    on conv2d's output (columns Wᵀ @ g, added back into the windows they came from)."""
    n, c, h, width = shape
    f, cg, kh, kw = w.shape
    oh, ow = g.shape[-2:]
    dtype = np.result_type(g, w)
    dxp = np.zeros((n, c, h + 2 * padding[0], width + 2 * padding[1]), dtype)
    w2t = w.reshape(groups, f // groups, cg * kh * kw).transpose(0, 2, 1)
    slices = offset_slices((kh, kw), stride, dilation, (oh, ow))
    step = _step(n, c * kh * kw * oh * ow)
    for n0 in range(0, n, step):
        dcols = np.matmul(w2t, _rows(g, n0, step, groups)).reshape(c, kh * kw, -1, oh, ow)
        block = dxp[n0 : n0 + step].transpose(1, 0, 2, 3)  # (C, B, H, W), a view
        for k, (rows, cols) in enumerate(slices):
            block[:, :, rows, cols] += dcols[:, k]
    return np.ascontiguousarray(cropped(dxp, padding))


def conv2d_weight_grad(
    x: np.ndarray,
    g: np.ndarray,
    *,
    shape: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
) -> np.ndarray:
    """The gradient on filters of ``shape`` (F, C/groups, KH, KW): g @ columnsᵀ, summed over the
    samples by the product itself."""
    n, c = x.shape[:2]
    f, cg, kh, kw = shape
    oh, ow = g.shape[-2:]
    view = windows(padded(x, padding), (kh, kw), stride, dilation, (oh, ow))
    dw = np.zeros((groups, f // groups, cg * kh * kw), np.result_type(x, g))
    step = _step(n, c * kh * kw * oh * ow)
    for n0 in range(0, n, step):
        cols = _columns(view, n0, step, groups)
        dw += np.matmul(_rows(g, n0, step, groups), cols.transpose(0, 2, 1))
    return dw.reshape(shape)


def _options_code(site: Any) -> str:
    return site.format("stride={stride}, padding={padding}, dilation={dilation}, groups={groups})")


class Conv2d(Gate):
    """conv2d(x, W[, b]): dx is the transposed convolution of g with W, dW the input's windows
    times g, db the sum of g over samples and positions."""

    name = "conv2d"
    symbol = "conv"

    @staticmethod
    def forward_code(site):
        bias = ", {2}" if len(site.args) == 3 else ""
        return site.format("conv2d_forward({0}, {1}" + bias + ", ") + _options_code(site)

    @staticmethod
    def forward(ctx, x, w, b=None, **options):
        ctx.save_for_backward(x, w)
        return conv2d_forward(x, w, b, **options)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        options = ctx.options
        gx = gw = None
        if need[0]:
            gx = Conv2dInputGrad.apply(grad, w, shape=np.shape(raw(x)), **options)
        if need[1]:
            gw = Conv2dWeightGrad.apply(x, grad, shape=np.shape(raw(w)), **options)
        if len(need) == 2:
            return gx, gw
        return gx, gw, (grad.sum(axis=(0, 2, 3)) if need[2] else None)


class Conv2dInputGrad(Gate):
    """conv2d's input gradient (a transposed convolution), linear in g and in W: its gradients
    are conv2d(h, W) for g and conv2d_weight_grad(h, g) for W."""

    name = "conv2d_input_grad"
    symbol = "convᵀ"

    @staticmethod
    def forward_code(site):
        return site.format("conv2d_input_grad({0}, {1}, shape={shape}, ") + _options_code(site)

    @staticmethod
    def forward(ctx, g, w, *, shape, **options):
        ctx.save_for_backward(g, w)
        return conv2d_input_grad(g, w, shape=shape, **options)

    @staticmethod
    def backward(ctx, grad):
        g, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        options = dict(ctx.options)
        del options["shape"]
        gg = Conv2d.apply(grad, w, **options) if need[0] else None
        gw = Conv2dWeightGrad.apply(grad, g, shape=np.shape(raw(w)), **options) if need[1] else None
        return gg, gw


class Conv2dWeightGrad(Gate):
    """conv2d's filter gradient, linear in x and in g: its gradients are
    conv2d_input_grad(g, h) for x and conv2d(x, h) for g."""

    name = "conv2d_weight_grad"
    symbol = "conv_w"

    @staticmethod
    def forward_code(site):
        return site.format("conv2d_weight_grad({0}, {1}, shape={shape}, ") + _options_code(site)

    @staticmethod
    def forward(ctx, x, g, *, shape, **options):
        ctx.save_for_backward(x, g)
        return conv2d_weight_grad(x, g, shape=shape, **options)

    @staticmethod
    def backward(ctx, grad):
        x, g = ctx.saved_tensors
        need = ctx.needs_input_grad
        options = dict(ctx.options)
        del options["shape"]
        gx = Conv2dInputGrad.apply(g, grad, shape=np.shape(raw(x)), **options) if need[0] else None
        gg = Conv2d.apply(x, grad, **options) if need[1] else None
        return gx, gg


def _shape(value: Any) -> tuple:
    return value.data.shape if isinstance(value, Node) else np.shape(value)


def _padding(padding: Any, kernel: tuple, dilation: tuple, stride: tuple) -> tuple[int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise GateError("gate 'conv2d': padding='same' needs stride 1 (as in PyTorch)")
            total = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
            if any(t % 2 for t in total):
                raise GateError(
                    f"gate 'conv2d': padding='same' with kernel {kernel} and dilation {dilation} "
                    "needs uneven padding; pad the input with cr.nn.functional.pad instead"
                )
            return total[0] // 2, total[1] // 2
        raise GateError(f"gate 'conv2d': padding must be 'valid', 'same' or ints, got {padding!r}")
    return pair(padding, "padding", "conv2d", minimum=0)


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """2-D cross-correlation as PyTorch's ``conv2d``: x (N, C, H, W) or (C, H, W), weight
    (F, C/groups, KH, KW), bias (F,); one gate."""
    xs, ws = _shape(x), _shape(weight)
    if len(ws) != 4:
        raise GateError(f"gate 'conv2d': weight must be 4-D (F, C/groups, KH, KW), got {ws}")
    if len(xs) == 3:
        out = conv2d(x[None], weight, bias, stride, padding, dilation, groups)
        return out[0]
    if len(xs) != 4:
        raise GateError(f"gate 'conv2d': input must be 3-D or 4-D (N, C, H, W), got shape {xs}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise GateError(f"gate 'conv2d': groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if xs[1] != ws[1] * groups or ws[0] % groups:
        raise GateError(
            f"gate 'conv2d': input of shape {xs} does not fit weight of shape {ws} with groups="
            f"{groups} (needs C = {ws[1]} * groups and F divisible by groups)"
        )
    stride = pair(stride, "stride", "conv2d")
    dilation = pair(dilation, "dilation", "conv2d")
    pad = _padding(padding, ws[2:], dilation, stride)
    output_hw(xs, ws[2:], stride, pad, dilation, "conv2d")
    options = {"stride": stride, "padding": pad, "dilation": dilation, "groups": groups}
    if bias is None:
        return Conv2d.apply(x, weight, **options)
    if _shape(bias) != (ws[0],):
        raise GateError(
            f"gate 'conv2d': bias of shape {_shape(bias)} does not fit {ws[0]} filters "
            f"(expected ({ws[0]},))"
        )
    return Conv2d.apply(x, weight, bias, **options)
