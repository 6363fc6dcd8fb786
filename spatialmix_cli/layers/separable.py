"""Convolutions tagged with the kind of mixing they do, so learn modes can find them.

A separable convolution (Sec. 3 of Cazenavette et al. 2025) is a depthwise k×k convolution
(*spatial mixing*, one bank of ``depth_multiplier`` filters per input channel) followed by a pointwise
1×1 convolution (*channel mixing*). Each part is a subclass of ``nn.Conv2d`` with a ``role``
attribute: ``"spatial"``, ``"channel"`` or ``"dense"`` (an ordinary conv that mixes both). Subclassing
keeps the state-dict keys and the cuDNN/oneDNN kernels of ``nn.Conv2d`` unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DepthwiseConv2d(nn.Conv2d):
    """Spatial mixing: depthwise k×k conv, ``channels -> channels * depth_multiplier``, groups = channels.

    Its weight (``channels * depth_multiplier, 1, k, k``) is what the filter banks initialise and what
    ``learn="chans"`` freezes.
    """

    role = "spatial"
    filter_bank = True  # the filter banks set its weight (the patch stem, also spatial, keeps its init)

    def __init__(
        self,
        channels: int,
        kernel: int,
        *,
        depth_multiplier: int = 1,
        stride: int = 1,
        padding: int | str = "same",
        bias: bool = True,
    ) -> None:
        super().__init__(
            channels,
            channels * depth_multiplier,
            kernel,
            stride=stride,
            padding=padding,
            groups=channels,
            bias=bias,
        )
        self.depth_multiplier = depth_multiplier


class PatchConv2d(nn.Conv2d):
    """Spatial mixing in the ConvMixer stem: a p×p conv with stride p (frozen by ``learn="chans"``, as in
    the paper, but not a depthwise filter bank)."""

    role = "spatial"


class ChannelConv2d(nn.Conv2d):
    """Channel mixing: a pointwise 1×1 convolution (frozen by ``learn="space"``)."""

    role = "channel"

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A strided 1x1 conv reads only every stride-th pixel: take them first, then a stride-1 conv. Same
        # numbers (forward and gradients, see tests/training/test_fast_paths.py); why not nn.Conv2d's strided kernel:
        # torch 2.14's oneDNN backward of a strided 1x1 conv in channels_last hangs on CPU (the projection
        # shortcut of every ResNet stage), and channels_last is the faster CPU layout for everything else.
        if self.stride != (1, 1):
            x = x[:, :, :: self.stride[0], :: self.stride[1]]
        return F.conv2d(x, self.weight, self.bias)


class DenseConv2d(nn.Conv2d):
    """An ordinary k×k convolution that mixes space and channels at once (the plain ResNet reference)."""

    role = "dense"


class SeparableConv2d(nn.Sequential):
    """Depthwise k×k (depth multiplier ``d``, stride on this part) then pointwise 1×1.

    Parameters (no bias): ``c_in·k²·d + c_in·d·c_out`` against ``c_in·c_out·k²`` for a dense conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        stride: int = 1,
        depth_multiplier: int = 9,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.spatial = DepthwiseConv2d(
            in_channels,
            kernel,
            depth_multiplier=depth_multiplier,
            stride=stride,
            padding=kernel // 2,
            bias=bias,
        )
        self.channel = ChannelConv2d(in_channels * depth_multiplier, out_channels, bias=bias)
