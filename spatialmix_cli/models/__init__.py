"""One registry for every model: ``create_model(name, **kwargs)`` and ``list_models()``; ``timm:NAME`` for
timm's; :func:`adapt_model` for any other ``nn.Module``."""

from . import convmixer, mlp_mixer, resnet, sep_resnet, unshuffle  # noqa: F401  (import registers the entry points)
from ._registry import check_model_name, create_model, is_model, list_models
from .adapt import adapt_model
from .check import check_model

__all__ = ["adapt_model", "check_model", "check_model_name", "create_model", "is_model", "list_models"]
