"""One registry for every model: ``create_model(name, **kwargs)`` and ``list_models()``."""

from . import convmixer, resnet, sep_resnet  # noqa: F401  (import registers the entry points)
from ._registry import check_model_name, create_model, is_model, list_models, register_model
from .convmixer import ConvMixer
from .resnet import PreActResNet

__all__ = [
    "ConvMixer",
    "PreActResNet",
    "check_model_name",
    "create_model",
    "is_model",
    "list_models",
    "register_model",
]
