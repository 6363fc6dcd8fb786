"""Model registry: ``@register_model`` entry functions, ``create_model(name, **kwargs)``, ``list_models()``.

Follows timm's ``_registry.py``: entry functions are named after their settings
(``convmixer_256_8_k5_p2``), ``None`` kwargs are dropped so unset options keep the model's defaults, and
unknown names or arguments are errors.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, did_you_mean

_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its own name."""
    if fn.__name__ in _MODEL_ENTRYPOINTS:
        raise RuntimeError(f"model '{fn.__name__}' registered twice")
    _MODEL_ENTRYPOINTS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style ``pattern``."""
    return sorted(n for n in _MODEL_ENTRYPOINTS if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    return name in _MODEL_ENTRYPOINTS


def check_model_name(name: str) -> str:
    if name not in _MODEL_ENTRYPOINTS:
        raise ConfigError(
            f"unknown model '{name}'{did_you_mean(name, _MODEL_ENTRYPOINTS)}; "
            "`spatialmix train --list-models` shows them all"
        )
    return name


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build registered model ``name``. ``None`` values are dropped.

    The whole model (not only its filter banks) is a function of ``seed`` (default 0): the
    construction runs under a forked, seeded CPU RNG, so it neither reads nor changes the global RNG.
    """
    entry = _MODEL_ENTRYPOINTS[check_model_name(name)]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    seed = int(kwargs.get("seed", 0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return entry(**kwargs)


def check_kwargs(cls: type, name: str, kwargs: dict[str, Any], fixed: tuple[str, ...] = ()) -> None:
    """Raise a ConfigError naming the first argument that ``cls.__init__`` does not take (or that the
    entry point fixes itself, listed in ``fixed``)."""
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", *fixed)]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"model '{name}' takes no argument '{key}'{did_you_mean(key, accepted)}; "
                f"it takes: {', '.join(accepted)}"
            )


def preset(name: str, fixed: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Merge a preset's fixed settings into ``kwargs``; a conflicting user value is an error, since the
    preset's name spells its settings."""
    for key, value in fixed.items():
        if key in kwargs and kwargs[key] != value:
            raise ConfigError(
                f"model '{name}' fixes {key}={value}, but {key}={kwargs[key]} was given; "
                "use the generic architecture name to change it"
            )
    return {**kwargs, **fixed}
