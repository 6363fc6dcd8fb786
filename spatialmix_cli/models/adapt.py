"""Learn modes and frozen filter banks for *any* ``nn.Module``: the Python entry point.

::

    import torchvision
    from spatialmix_cli import adapt_model, param_report

    model = adapt_model(torchvision.models.mobilenet_v3_small(num_classes=10), learn="chans", seed=0)
    param_report(model)["by_type"]   # spatial / channel / dense / head / norm / other: trainable, frozen

:func:`adapt_model` tags every layer by its structure (:func:`~spatialmix_cli.layers.roles.tag_roles`:
depthwise convs and token-mixing Linears are spatial mixing, 1×1 convs and per-position Linears channel
mixing, other convs dense, the classifier the head), then does what every spatialmix model's constructor does last: draws the
depthwise filter banks and applies the learn mode (``chans`` freezes spatial mixing, ``space`` channel
mixing; norms and the head always learn). ``--arch timm:NAME`` is this applied to ``timm.create_model``.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from ..config.banks import BankSpec
from ..layers import configure_spatial_mixing
from ..layers.roles import tag_roles


def adapt_model(
    model: nn.Module,
    *,
    learn: str = "full",
    filters: str | BankSpec = "random",
    seed: int = 0,
    heads: Iterable[str] | None = None,
    token_mixers: Iterable[str] | None = None,
) -> nn.Module:
    """Tag ``model``'s layers, set its depthwise banks from ``filters`` (``pretrained``: keep the weights
    it has) with generators derived from ``seed``, and freeze what ``learn`` fixes. ``heads``: names of the
    classifier modules, if neither timm's ``get_classifier()`` nor "the last ``nn.Linear``" finds them.
    ``token_mixers``: names of the Linears that act across the token axis (spatial mixing); None: those of
    the known families (MLP-Mixer, ResMLP, gMLP: :data:`~spatialmix_cli.layers.roles.TOKEN_MIXERS`). Changes
    ``model`` in place and returns it."""
    tag_roles(model, heads, token_mixers)
    configure_spatial_mixing(model, learn=learn, filters=filters, seed=seed)
    return model
