"""MLP-Mixer (Tolstikhin et al. 2021) at any size, with learn modes and filter banks: the token-mixing MLPs
are its spatial mixing, the channel MLPs its channel mixing (:mod:`spatialmix_cli.layers.roles`).

timm's ``mixer_*`` entry points fix patch size, depth and width (``--set model.embed_dim=128`` collides
with them), so this registered model builds timm's :class:`~timm.models.mlp_mixer.MlpMixer` class itself
at the size asked for: ``width`` (embed dim), ``depth`` (blocks), ``patch``, and the data's
``image_size``, which sets the token MLPs' size. As in ConvMixer, the patch stem is spatial mixing (frozen
by ``chans``) but no filter bank: it keeps its init.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..layers.roles import tag_roles
from ._registry import build_model, check_kwargs, register_model
from .common import DEFAULT_MIXING, SpatialMixingArgs


class MLPMixer(nn.Module):
    """MLP-Mixer-``width``/``depth`` on ``patch``×``patch`` patches of ``image_size`` images (timm's
    ``MlpMixer``: token MLP hidden ``width/2``, channel MLP hidden ``4·width``, LayerNorm, GELU, average
    pool, linear head). Defaults: width 128, depth 4, patch 4, 28-px images; ``mixing`` as every model."""

    def __init__(
        self,
        width: int = 128,
        depth: int = 4,
        patch: int = 4,
        image_size: int = 28,
        in_chans: int = 3,
        num_classes: int = 10,
        mixing: SpatialMixingArgs = DEFAULT_MIXING,
    ) -> None:
        super().__init__()
        for key, value in dict(width=width, depth=depth, patch=patch, image_size=image_size).items():
            if int(value) < 1:
                raise ConfigError(f"mlp_mixer {key} must be >= 1, got {value}")
        if patch > image_size:
            raise ConfigError(f"mlp_mixer patch {patch} is larger than the {image_size}-px images")
        # reason: timm is an optional import, loaded only when a timm-built model is asked for
        from timm.models.mlp_mixer import MlpMixer

        self.normalize = mixing.normalize(in_chans)
        self.mixer = MlpMixer(
            num_classes=num_classes,
            img_size=image_size,
            in_chans=in_chans,
            patch_size=patch,
            num_blocks=depth,
            embed_dim=width,
        )
        stem = self.mixer.stem.proj
        stem.role, stem.filter_bank = "spatial", False  # the patch stem, as ConvMixer's PatchConv2d
        tag_roles(self, heads=["mixer.head"])  # token MLPs: spatial (roles.TOKEN_MIXERS); the rest channel
        mixing.finish(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixer(self.normalize(x))


@register_model
def mlp_mixer(**kwargs: Any) -> MLPMixer:
    """MLP-Mixer with every size free (defaults: width 128, depth 4, patch 4, 28-px images)."""
    check_kwargs(MLPMixer, "mlp_mixer", kwargs)
    return build_model(MLPMixer, kwargs)
