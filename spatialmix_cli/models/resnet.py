"""Pre-activation ResNets (He et al., "Identity Mappings in Deep Residual Networks", 2016), with every
k×k convolution either separable (``sep_resnet*``, Cazenavette et al. 2025 Figs. 2, 4, 6) or dense
(``resnet*``, the reference with the same shapes).

- CIFAR form: 6n+2 layers, 3 stages of n basic blocks, widths (w, 2w, 4w), base width w = 16.
- ImageNet form: 8n+2 layers, stem 7×7/2 conv → BN → ReLU → 3×3/2 max-pool, 4 stages, widths
  (w, 2w, 4w, 8w), w = 64.
The width multiplier of the paper's width sweep is ``width / 16`` (CIFAR) or ``width / 64`` (ImageNet).
Separable convs use depth multiplier d = 9 (depthwise c → 9c, then pointwise 9c → c_out). Downsampling
shortcuts are pointwise 1×1 convolutions with stride 2 (channel mixing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers import ChannelConv2d, DenseConv2d, SeparableConv2d
from ._registry import build_model, check_kwargs, preset, register_model
from .common import DEFAULT_MIXING, SpatialMixingArgs

ConvFactory = Callable[[int, int, int, int], nn.Module]  # (c_in, c_out, kernel, stride) -> module

_FORMS = {
    # form: (layers per block-stage unit, stage count, default base width)
    "cifar": (6, 3, 16),
    "imagenet": (8, 4, 64),
}


def _make_conv(separable: bool, depth_multiplier: int) -> ConvFactory:
    def conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Module:
        if separable:
            return SeparableConv2d(c_in, c_out, kernel, stride=stride, depth_multiplier=depth_multiplier)
        return DenseConv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)

    return conv


class PreActBlock(nn.Module):
    """BN → ReLU → conv(stride) → BN → ReLU → conv, plus identity or a 1×1 projection of the
    pre-activated input."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, conv: ConvFactory) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv(c_in, c_out, kernel, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv(c_out, c_out, kernel, 1)
        self.shortcut = (
            ChannelConv2d(c_in, c_out, stride=stride, bias=False) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Pre-activation ResNet of ``depth`` layers in the CIFAR (6n+2) or ImageNet (8n+2) form.

    Defaults: CIFAR form, depth 20, base width 16, kernel 3, separable with depth multiplier 9,
    3 input channels, 10 classes; ``mixing``: learn ``full``, filters ``random``, seed 0
    (:class:`~.common.SpatialMixingArgs`).
    """

    def __init__(
        self,
        depth: int = 20,
        width: int | None = None,
        kernel: int = 3,
        depth_multiplier: int = 9,
        form: str = "cifar",
        separable: bool = True,
        in_chans: int = 3,
        num_classes: int = 10,
        mixing: SpatialMixingArgs = DEFAULT_MIXING,
    ) -> None:
        super().__init__()
        if form not in _FORMS:
            raise ConfigError(f"unknown ResNet form '{form}'; choose from: {', '.join(_FORMS)}")
        per_block, stages, base_width = _FORMS[form]
        if depth < per_block + 2 or (depth - 2) % per_block:
            examples = ", ".join(str(per_block * n + 2) for n in range(1, 6))
            raise ConfigError(f"{form} ResNet depth must be {per_block}n+2 ({examples}, ...), got {depth}")
        if kernel < 1 or kernel % 2 == 0:
            raise ConfigError(f"ResNet kernel must be odd (stride-2 'same' padding), got {kernel}")
        if depth_multiplier < 1:
            raise ConfigError(f"depth_multiplier must be >= 1, got {depth_multiplier}")
        width = base_width if width is None else width
        if width < 1:
            raise ConfigError(f"ResNet width must be >= 1, got {width}")
        conv = _make_conv(separable, depth_multiplier)
        blocks_per_stage = (depth - 2) // per_block
        self.normalize = mixing.normalize(in_chans)
        if form == "cifar":
            self.stem = conv(in_chans, width, kernel, 1)
        else:
            # conv 7×7/2 → BN → ReLU → max-pool, as He et al. 2016 and fb.resnet.torch's preresnet: the
            # pre-activation blocks normalise their own inputs, but the stem's max-pool needs activations.
            self.stem = nn.Sequential(
                conv(in_chans, width, 7, 2),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        layers: list[nn.Module] = []
        c_in = width
        for stage in range(stages):
            c_out = width * 2**stage
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(PreActBlock(c_in, c_out, kernel, stride, conv))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(c_in)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)
        mixing.finish(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.layers(self.stem(self.normalize(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.forward_features(x)).flatten(1))


def create_resnet(name: str, fixed: dict[str, Any], kwargs: dict[str, Any]) -> PreActResNet:
    """Shared by the ``resnet*`` and ``sep_resnet*`` entry points: ``fixed`` holds the family's settings
    (form, separable) and a preset's (depth)."""
    check_kwargs(PreActResNet, name, kwargs, fixed=("form", "separable"))
    return build_model(PreActResNet, preset(name, fixed, kwargs))


_DENSE_CIFAR = dict(form="cifar", separable=False)
_DENSE_IMAGENET = dict(form="imagenet", separable=False)


@register_model
def resnet(**kwargs: Any) -> PreActResNet:
    """Dense pre-activation ResNet, CIFAR form (6n+2; default depth 20), the reference for sep_resnet."""
    return create_resnet("resnet", _DENSE_CIFAR, kwargs)


@register_model
def resnet_imagenet(**kwargs: Any) -> PreActResNet:
    """Dense pre-activation ResNet, ImageNet form (8n+2; default depth 18)."""
    return create_resnet("resnet_imagenet", _DENSE_IMAGENET, {"depth": 18, **kwargs})


@register_model
def resnet20(**kwargs: Any) -> PreActResNet:
    """Dense pre-activation ResNet-20 (CIFAR form)."""
    return create_resnet("resnet20", {**_DENSE_CIFAR, "depth": 20}, kwargs)


@register_model
def resnet18_imagenet(**kwargs: Any) -> PreActResNet:
    """Dense pre-activation ResNet-18 (ImageNet form, basic blocks)."""
    return create_resnet("resnet18_imagenet", {**_DENSE_IMAGENET, "depth": 18}, kwargs)
