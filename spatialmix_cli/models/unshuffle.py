"""The un-shuffle ConvMixer of Sec. 4.4 (Figs. 10, 11, B.2–B.5): patch size 1, no pooling, and a linear
1×1 head that maps the width back to the image's channels, so the output is an image of the input's size.

Trained with MSE to restore images whose pixel positions were scrambled by one fixed permutation
(:mod:`spatialmix_cli.analysis.unshuffle`). The blocks are exactly those of :class:`ConvMixer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import PatchConv2d
from ._registry import build_model, check_kwargs, register_model
from .common import DEFAULT_MIXING, SpatialMixingArgs
from .convmixer import activation_layer, convmixer_block


class PixelHead(nn.Conv2d):
    """The linear 1×1 projection from ``width`` features back to ``out_chans`` pixels. Like a classifier
    head it always learns (learn modes freeze only ``spatial`` / ``channel`` layers)."""

    role = "head"

    def __init__(self, width: int, out_chans: int) -> None:
        super().__init__(width, out_chans, 1)


class UnshuffleConvMixer(nn.Module):
    """ConvMixer-``width``/``depth`` (kernel ``kernel``, patch 1) that outputs an image in pixel units.

    Defaults: width 128, depth 8, kernel 7; ``mixing`` as every model (:class:`~.common.SpatialMixingArgs`).
    Takes scrambled images in [0, 1] (normalised inside) and
    returns the restored image (unbounded; trained towards [0, 1])."""

    def __init__(
        self,
        width: int = 128,
        depth: int = 8,
        kernel: int = 7,
        activation: str = "gelu",
        in_chans: int = 3,
        mixing: SpatialMixingArgs = DEFAULT_MIXING,
    ) -> None:
        super().__init__()
        for key, value in dict(width=width, depth=depth, kernel=kernel).items():
            if int(value) < 1:
                raise ConfigError(f"convmixer_unshuffle {key} must be >= 1, got {value}")
        act = activation_layer(activation)
        self.normalize = mixing.normalize(in_chans)
        # Patch size 1: the "stem" is a 1×1 conv; it is still the frozen stem in learn=chans, as in ConvMixer.
        self.stem = nn.Sequential(PatchConv2d(in_chans, width, 1), act(), nn.BatchNorm2d(width))
        self.blocks = nn.Sequential(*[convmixer_block(width, kernel, act) for _ in range(depth)])
        self.head = PixelHead(width, in_chans)
        mixing.finish(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(self.normalize(x))))


@register_model
def convmixer_unshuffle(**kwargs: Any) -> UnshuffleConvMixer:
    """Un-shuffle ConvMixer (patch 1, 1×1 pixel head; defaults width 128, depth 8, kernel 7)."""
    check_kwargs(UnshuffleConvMixer, "convmixer_unshuffle", kwargs)
    return build_model(UnshuffleConvMixer, kwargs)
