"""Torch-free facts about model names and timm's arguments, for the config checks and folder names (the
models themselves live in :mod:`spatialmix_cli.models`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

TIMM_PREFIX = "timm:"
# What spatialmix passes timm.create_model itself; model_args holds the rest of timm's arguments.
FIXED_BY_SPATIALMIX = ("pretrained", "in_chans", "num_classes", "pretrained_cfg", "checkpoint_path")


def is_timm_name(name: str) -> bool:
    """``timm:NAME``: a model from timm's zoo rather than spatialmix's registry."""
    return name.startswith(TIMM_PREFIX)


def check_model_args(model_args: Any) -> dict[str, Any]:
    """timm's own arguments: a mapping of names to JSON values, none of those spatialmix sets itself."""
    if not isinstance(model_args, Mapping) or not all(isinstance(k, str) for k in model_args):
        raise ConfigError(
            f"model_args must be a mapping of timm argument names to values, got {model_args!r}"
        )
    for key in model_args:
        if key in FIXED_BY_SPATIALMIX:
            raise ConfigError(
                f"model_args.{key}: spatialmix sets '{key}' itself (the dataset gives in_chans and "
                "num_classes; pretrained is a key of its own)"
            )
    canonical_json(dict(model_args))
    return dict(model_args)


def canonical_json(value: Mapping[str, Any]) -> str:
    """Compact JSON with sorted keys: one spelling of timm's arguments (``{"drop_path_rate":0.1}``)."""
    try:
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigError(
            f"model_args values must be numbers, strings, booleans or lists, got {dict(value)!r}"
        ) from None
