"""Model registry: ``@register_model`` entry functions, ``create_model(name, **kwargs)``, ``list_models()``;
``timm:NAME`` names any timm model (:mod:`.timm_models`).

Follows timm's ``_registry.py``: entry functions are named after their settings
(``convmixer_256_8_k5_p2``), ``None`` kwargs are dropped so unset options keep the model's defaults, and
unknown names or arguments are errors.
"""

from __future__ import annotations

import collections.abc
import fnmatch
import inspect
import math
import typing
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config.banks import BankSpec, parse_bank
from ..config.keys import specs
from ..config.limits import MAX_CHANNELS, MAX_CLASSES
from ..config.names import MODEL_NAMES, is_timm_name
from ..config.names import check_model_name as check_name
from ..config.train import TrainConfig
from ..errors import ConfigError, did_you_mean
from ..seeding import derive_seed
from .common import mixing_arg_hints, split_mixing_args
from .timm_models import create_timm_model, timm_name

ModelT = typing.TypeVar("ModelT", bound=nn.Module)
_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its own name, one of the config's ``MODEL_NAMES`` (which the CLI's checks and
    help read without importing the models)."""
    if fn.__name__ in _MODEL_ENTRYPOINTS:
        raise RuntimeError(f"model '{fn.__name__}' registered twice")
    if fn.__name__ not in MODEL_NAMES:
        raise RuntimeError(f"model '{fn.__name__}' is not named in config.names.MODEL_NAMES")
    _MODEL_ENTRYPOINTS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style ``pattern``."""
    return sorted(n for n in _MODEL_ENTRYPOINTS if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    """A registered name, or ``timm:NAME`` for a model timm knows (False when timm is not installed)."""
    if is_timm_name(name):
        try:
            timm_name(name)
        except ConfigError:
            return False
        return True
    return name in _MODEL_ENTRYPOINTS


def check_model_name(name: str) -> str:
    """A registered name, or ``timm:NAME`` for a model timm knows (a ConfigError says what is wrong)."""
    if is_timm_name(name):
        timm_name(name)  # timm installed and the name known, or a ConfigError saying which is not
    return check_name(name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build registered model ``name``. ``None`` values are dropped.

    The whole model (not only its filter banks) is a function of ``seed`` (default 0): the
    construction runs under a forked CPU RNG seeded with ``derive_seed(seed, "init")``, so it neither reads
    nor changes the global RNG, and PyTorch's default init draws from a stream that nothing else uses (the
    frozen filter banks, the data order and the attacks each derive their own; see :mod:`..seeding`).
    """
    entry = create_timm_model if is_timm_name(name) else _MODEL_ENTRYPOINTS[check_model_name(name)]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    seed = int(kwargs.get("seed", 0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return entry(name, **kwargs) if is_timm_name(name) else entry(**kwargs)


def _size_limits() -> dict[str, float]:
    """Upper bounds on size arguments: each size key's own bound (declared once, on its config field) and
    the data's. Far beyond any real model; they stop a typo or a hostile checkpoint's metadata from building
    a model with billions of layers (which would hang even on the meta device)."""
    keys = {name: s.upper() for name, s in specs(TrainConfig).items() if s.model == "arch"}
    return {
        **{k: v for k, v in keys.items() if v is not None},
        "image_size": specs(TrainConfig)["image_size"].upper(),
        "in_chans": MAX_CHANNELS,
        "num_classes": MAX_CLASSES,
    }


SIZE_LIMITS = _size_limits()
_SEED_LIMIT = 1 << 63


def check_kwargs(cls: type, name: str, kwargs: dict[str, Any], fixed: tuple[str, ...] = ()) -> None:
    """Raise a ConfigError naming the first argument that ``cls.__init__`` (its architecture arguments, and
    the shared ones of :class:`~.common.SpatialMixingArgs` in place of ``mixing``) does not take (or that
    the entry point fixes itself, listed in ``fixed``), or whose value has the wrong type or size."""
    shared = mixing_arg_hints()
    own = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "mixing", *fixed)]
    accepted = [*own, *shared]
    hints = {**typing.get_type_hints(cls.__init__), **shared}
    for key, value in kwargs.items():
        if key not in accepted:
            raise ConfigError(
                f"model '{name}' takes no argument '{key}'{did_you_mean(key, accepted)}; "
                f"it takes: {', '.join(accepted)}"
            )
        if key == "filters" and isinstance(value, BankSpec):
            continue
        problem = _type_problem(hints.get(key), value)
        if problem is None and key in SIZE_LIMITS and value > SIZE_LIMITS[key]:
            problem = f"at most {int(SIZE_LIMITS[key])}"
        if problem is None and key == "seed" and not 0 <= value < _SEED_LIMIT:
            problem = "in [0, 2**63)"
        if problem is not None:
            raise ConfigError(f"model '{name}' argument '{key}' must be {problem}, got {value!r}")
        if key == "filters":
            parse_bank(value)  # a spec: an unknown bank or a bad parameter is a ConfigError here


def build_model(cls: type[ModelT], kwargs: dict[str, Any]) -> ModelT:
    """``cls(**architecture, mixing=SpatialMixingArgs(...))`` from flat kwargs that :func:`check_kwargs`
    passed (see :func:`~.common.split_mixing_args`)."""
    arch, mixing = split_mixing_args(kwargs)
    return cls(**arch, mixing=mixing)


def _type_problem(hint: Any, value: Any) -> str | None:
    """What ``value`` should be to match annotation ``hint``, or None if it does (None is always allowed:
    ``create_model`` drops None values before this runs)."""
    args = typing.get_args(hint)
    if type(None) in args:
        hint = next(a for a in args if a is not type(None))
    if value is None:
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "true/false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if typing.get_origin(hint) is collections.abc.Sequence:
        ok = isinstance(value, (list, tuple)) and all(_type_problem(float, v) is None for v in value)
        return None if ok else "a list of finite numbers"
    return None


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
