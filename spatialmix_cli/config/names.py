"""The registries' names and the torch-free facts about model names and timm's arguments, for the config
checks, the CLI's help and completion, and folder names. Each registry (tasks in
:mod:`spatialmix_cli.training.tasks`, learn modes in :mod:`spatialmix_cli.layers.learn`, datasets in
:mod:`spatialmix_cli.data.info`, models in :mod:`spatialmix_cli.models`) is keyed by these names, and a test
holds the two equal."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, did_you_mean

# Each registry's names, with what --help says of a name beside it ("": the name says it all).
TASK_NOTES: dict[str, str] = {
    "classify": "",
    "unshuffle": "restore pixel-permuted images; arch convmixer_unshuffle",
}
# In the order of what they train (the report's order): head ⊂ norm ⊂ chans ⊂ full, then space.
LEARN_NOTES: dict[str, str] = {
    "head": "only the classifier learns",
    "norm": "only norms and the classifier learn",
    "chans": "spatial frozen",
    "full": "",
    "space": "channel mixing frozen",
}
DATASET_NOTES: dict[str, str] = {
    "mnist": "",
    "fashion-mnist": "",
    "cifar10": "",
    "cifar100": "",
    "imagenet": "",
    "folder": "your own, --data-dir",
    "synthetic": "",
}
TASKS: tuple[str, ...] = tuple(TASK_NOTES)
LEARN_MODES: tuple[str, ...] = tuple(LEARN_NOTES)
DATASET_NAMES: tuple[str, ...] = tuple(DATASET_NOTES)
# spatialmix models whose weights depend on the image size (token-mixing MLPs): given the data's image_size.
IMAGE_SIZED_MODELS = frozenset({"mlp_mixer"})
# Streamed from an ImageFolder tree (data/imagefolder.py) rather than loaded as tensors.
STREAMED = frozenset({"imagenet", "folder"})

# spatialmix's own models (the entry points of spatialmix_cli.models register under these names only)
MODEL_NAMES: tuple[str, ...] = (
    "convmixer",
    "convmixer_128_8_k8_p1",
    "convmixer_1536_20_k9_p7",
    "convmixer_256_8_k5_p2",
    "convmixer_512_16_k8_p7",
    "convmixer_768_32_k7_p7",
    "convmixer_unshuffle",
    "mlp_mixer",
    "resnet",
    "resnet18_imagenet",
    "resnet20",
    "resnet_imagenet",
    "sep_resnet",
    "sep_resnet110",
    "sep_resnet18_imagenet",
    "sep_resnet20",
    "sep_resnet34_imagenet",
    "sep_resnet56",
    "sep_resnet_imagenet",
)

TIMM_PREFIX = "timm:"
# What spatialmix passes timm.create_model itself; model_args holds the rest of timm's arguments.
FIXED_BY_SPATIALMIX = ("pretrained", "in_chans", "num_classes", "pretrained_cfg", "checkpoint_path")


def is_timm_name(name: str) -> bool:
    """``timm:NAME``: a model from timm's zoo rather than spatialmix's registry."""
    return name.startswith(TIMM_PREFIX)


def check_model_name(name: str) -> str:
    """A spatialmix model name, or any ``timm:NAME`` (whether timm knows it is checked where timm is
    imported: :func:`spatialmix_cli.models.check_model_name`)."""
    if not is_timm_name(name) and name not in MODEL_NAMES:
        raise ConfigError(
            f"unknown model '{name}'{did_you_mean(name, MODEL_NAMES)}; "
            "`spatialmix train --list-models` shows them all"
        )
    return name


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
