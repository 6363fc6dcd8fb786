"""One registry for every model: ``create_model(name, **kwargs)`` and ``list_models()``; ``timm:NAME`` for
timm's; :func:`adapt_model` for any other ``nn.Module``."""

from . import convmixer, resnet, sep_resnet, unshuffle  # noqa: F401  (import registers the entry points)
from ._registry import check_model_name, create_model, is_model, list_models, register_model
from .adapt import adapt_model
from .common import SpatialMixingArgs
from .convmixer import ConvMixer, convmixer_block
from .resnet import PreActResNet
from .timm_models import TimmClassifier
from .unshuffle import UnshuffleConvMixer

__all__ = [
    "ConvMixer",
    "PreActResNet",
    "SpatialMixingArgs",
    "TimmClassifier",
    "UnshuffleConvMixer",
    "adapt_model",
    "check_model_name",
    "convmixer_block",
    "create_model",
    "is_model",
    "list_models",
    "register_model",
]
