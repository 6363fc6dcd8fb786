"""ConvMixer (Trockman & Kolter, "Patches Are All You Need?", 2022) with learn modes and filter banks.

Used by Cazenavette et al. 2025 for Fig. 3 (filter structure), Fig. 5 (full / chans / space over depth:
CIFAR-10 width 128 k8 p1, ImageNet width 512 k8 p7) and Fig. 7 (smoothed random filters).
Block structure exactly as the original: stem conv p×p stride p → GELU → BN; ``depth`` blocks of
Residual(depthwise k×k 'same' → GELU → BN) then pointwise 1×1 → GELU → BN; global average pool; linear head.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, check_choice
from ..layers import ChannelConv2d, DepthwiseConv2d, PatchConv2d
from ._registry import build_model, check_kwargs, preset, register_model
from .common import DEFAULT_MIXING, SpatialMixingArgs


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


# Activations by name (timm's ``act_layer``): the ConvMixer paper uses GELU, except ReLU for ConvMixer-768/32.
ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def activation_layer(name: str) -> type[nn.Module]:
    check_choice("activation", name, tuple(ACTIVATIONS))
    return ACTIVATIONS[name]


def convmixer_block(width: int, kernel: int, act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """Residual(depthwise k×k 'same' → act → BN), then pointwise 1×1 → act → BN (shared with the
    un-shuffle ConvMixer)."""
    return nn.Sequential(
        Residual(
            nn.Sequential(
                DepthwiseConv2d(width, kernel, padding="same"),
                act(),
                nn.BatchNorm2d(width),
            )
        ),
        ChannelConv2d(width, width),
        act(),
        nn.BatchNorm2d(width),
    )


class ConvMixer(nn.Module):
    """ConvMixer-``width``/``depth`` with kernel ``kernel`` and patch ``patch``.

    Defaults: width 256, depth 8, kernel 5, patch 2, 3 input channels, 10 classes; ``mixing`` (learn
    ``full``, filters ``random``, seed 0, ``mean``/``std``: see :class:`~.common.SpatialMixingArgs`). Takes
    images in [0, 1]; ``mean``/``std`` normalise inside the model.
    """

    def __init__(
        self,
        width: int = 256,
        depth: int = 8,
        kernel: int = 5,
        patch: int = 2,
        activation: str = "gelu",
        in_chans: int = 3,
        num_classes: int = 10,
        mixing: SpatialMixingArgs = DEFAULT_MIXING,
    ) -> None:
        super().__init__()
        for key, value in dict(width=width, depth=depth, kernel=kernel, patch=patch).items():
            if int(value) < 1:
                raise ConfigError(f"convmixer {key} must be >= 1, got {value}")
        act = activation_layer(activation)
        self.normalize = mixing.normalize(in_chans)
        self.stem = nn.Sequential(
            PatchConv2d(in_chans, width, patch, stride=patch),
            act(),
            nn.BatchNorm2d(width),
        )
        self.blocks = nn.Sequential(*[convmixer_block(width, kernel, act) for _ in range(depth)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)
        mixing.finish(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(self.normalize(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.forward_features(x)).flatten(1))


def _create_convmixer(name: str, **kwargs: Any) -> ConvMixer:
    check_kwargs(ConvMixer, name, kwargs)
    return build_model(ConvMixer, kwargs)


@register_model
def convmixer(**kwargs: Any) -> ConvMixer:
    """ConvMixer with every setting free (defaults: width 256, depth 8, k5, p2)."""
    return _create_convmixer("convmixer", **kwargs)


@register_model
def convmixer_256_8_k5_p2(**kwargs: Any) -> ConvMixer:
    """ConvMixer-256/8, kernel 5, patch 2: the CIFAR-10 model of the ConvMixer paper."""
    name = "convmixer_256_8_k5_p2"
    return _create_convmixer(name, **preset(name, dict(width=256, depth=8, kernel=5, patch=2), kwargs))


@register_model
def convmixer_128_8_k8_p1(**kwargs: Any) -> ConvMixer:
    """ConvMixer-128/8, kernel 8, patch 1: the CIFAR-10 model of Fig. 5 (depth 8 point)."""
    name = "convmixer_128_8_k8_p1"
    return _create_convmixer(name, **preset(name, dict(width=128, depth=8, kernel=8, patch=1), kwargs))


@register_model
def convmixer_512_16_k8_p7(**kwargs: Any) -> ConvMixer:
    """ConvMixer-512/16, kernel 8, patch 7: the ImageNet model of Fig. 5 (depth 16 point)."""
    name = "convmixer_512_16_k8_p7"
    return _create_convmixer(name, **preset(name, dict(width=512, depth=16, kernel=8, patch=7), kwargs))


@register_model
def convmixer_768_32_k7_p7(**kwargs: Any) -> ConvMixer:
    """ConvMixer-768/32, kernel 7, patch 7 (ImageNet, ConvMixer paper): the one preset with ReLU, as in the
    ConvMixer paper's Table 1 and timm's ``convmixer_768_32``."""
    name = "convmixer_768_32_k7_p7"
    fixed = dict(width=768, depth=32, kernel=7, patch=7, activation="relu")
    return _create_convmixer(name, **preset(name, fixed, kwargs))


@register_model
def convmixer_1536_20_k9_p7(**kwargs: Any) -> ConvMixer:
    """ConvMixer-1536/20, kernel 9, patch 7 (ImageNet, ConvMixer paper)."""
    name = "convmixer_1536_20_k9_p7"
    return _create_convmixer(name, **preset(name, dict(width=1536, depth=20, kernel=9, patch=7), kwargs))
