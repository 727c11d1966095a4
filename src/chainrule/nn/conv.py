"""Convolution and pooling modules with PyTorch's names, arguments and parameter shapes:
``Conv2d`` (weight (out, in/groups, KH, KW), bias (out,)), ``MaxPool2d``, ``AvgPool2d`` and
``Flatten``, so a course convnet reads as it does in PyTorch and its state dict carries over."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ops._spatial import pair
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import _positive
from .module import Module, Parameter

__all__ = ["AvgPool2d", "Conv2d", "Flatten", "MaxPool2d"]


class Conv2d(Module):
    """2-D convolution (cross-correlation) over (N, C, H, W) inputs.

    Initialized as PyTorch does: weight and bias uniform in ±1/sqrt(fan_in), fan_in =
    in_channels / groups * KH * KW, drawn from ``generator`` / ``seed``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        dtype: Any = np.float64,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive(out_channels, "out_channels", "Conv2d")
        self.groups = _positive(groups, "groups", "Conv2d")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"be divisible by groups ({groups})"
            )
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = (
            padding if isinstance(padding, str) else pair(padding, "padding", "Conv2d", 0)
        )
        self.dilation = pair(dilation, "dilation", "Conv2d")
        rng = init.get_generator(seed, generator)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        bound = 1.0 / math.sqrt(math.prod(shape[1:]))
        self.weight = Parameter(np.zeros(shape, dtype=dtype))
        init.uniform_(self.weight, -bound, bound, generator=rng)
        if bias:
            self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype))
            init.uniform_(self.bias, -bound, bound, generator=rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    """Max over windows (stride defaults to the kernel size); the gradient goes to each window's
    first maximum. PyTorch's arguments: ``return_indices`` makes it return (output, indices),
    ``ceil_mode`` keeps a last partial window."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Any) -> Any:
        return F.max_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return (
            f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """Mean over windows (stride defaults to the kernel size; zero padding counts unless
    ``count_include_pad=False``; PyTorch's ``ceil_mode`` and ``divisor_override``)."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> Tensor:
        return F.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}"


class Flatten(Module):
    """Axes ``start_dim`` .. ``end_dim`` merged into one (by default all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        start = self.start_dim % max(len(shape), 1)
        end = self.end_dim % max(len(shape), 1)
        if start > end:
            raise ValueError(
                f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} for an "
                f"input of shape {shape}"
            )
        return x.reshape(*shape[:start], -1, *shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
