"""One registry for every model: ``create_model(name, **kwargs)`` and ``list_models()``."""

from . import convmixer, resnet, sep_resnet, unshuffle  # noqa: F401  (import registers the entry points)
from ._registry import check_model_name, create_model, is_model, list_models, register_model
from .convmixer import ConvMixer
from .resnet import PreActResNet
from .unshuffle import UnshuffleConvMixer

__all__ = [
    "ConvMixer",
    "PreActResNet",
    "UnshuffleConvMixer",
    "check_model_name",
    "create_model",
    "is_model",
    "list_models",
    "register_model",
]
