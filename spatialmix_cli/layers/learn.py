"""Learn modes (which mixing learns) and the parameter report.

Cazenavette et al. 2025, Sec. 3: ``full`` learns everything; ``chans`` freezes every spatial-mixing
layer at its init (depthwise filters, the ConvMixer patch stem, token-mixing Linears); ``space`` freezes
every channel-mixing layer (pointwise 1×1 convs, per-position Linears). Norm layers and the classifier
head always learn. Two controls below them, beyond the paper: ``norm`` learns only the normalisation
layers' affine parameters and the head (Frankle, Schwab & Morcos, ICLR 2021), and ``head`` only the
classifier (an extreme learning machine, Huang et al. 2006: for un-shuffling models, the final 1×1
projection); every other parameter, positional embeddings and conv biases included, stays at its init.
So the ladder is head ⊂ norm ⊂ chans ⊂ full. Frozen parameters get ``requires_grad=False``, so autograd
computes no gradient for them and the trainer leaves them out of the optimizer.

``chans`` refuses a model whose only spatial-mixing weights would be a conv on a 1-channel input (a
grayscale stem): freezing that alone is not the paper's experiment. Attention (ViT, DeiT, Swin) and
pooling (PoolFormer) mix tokens with no weights of their own, so such models are refused with the reason.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..config.banks import BankSpec
from ..config.names import LEARN_MODES
from ..errors import ConfigError, check_choice
from .filter_banks import init_filter_banks
from .roles import is_one_channel_conv, weightless_mixers

_FROZEN_ROLE = {"chans": "spatial", "space": "channel"}
# The layer types (layer_type below) that learn under the modes that freeze everything else.
_ONLY = {"norm": frozenset({"norm", "head"}), "head": frozenset({"head"})}
# How a token mixer without weights of its own mixes (roles.weightless_mixers' kinds), for the chans refusal.
_WEIGHTLESS = {
    "attention": "attention, whose mixing weights are computed from the data",
    "pooling": "pooling, a fixed average",
}
# torch's normalisation layers, by their public classes (their common bases are private); subclasses count,
# timm's BatchNormAct2d among them.
BATCH_NORMS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LazyBatchNorm1d,
    nn.LazyBatchNorm2d,
    nn.LazyBatchNorm3d,
)
NORMS: tuple[type[nn.Module], ...] = (
    *BATCH_NORMS,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LazyInstanceNorm1d,
    nn.LazyInstanceNorm2d,
    nn.LazyInstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
)


def apply_learn_mode(model: nn.Module, learn: str) -> None:
    """Freeze the parameters of every module whose ``role`` the learn mode fixes."""
    check_choice("learn mode", learn, LEARN_MODES)
    if learn == "full":
        return
    if learn in _ONLY:
        _train_only(model, learn)
        return
    role = _FROZEN_ROLE[learn]
    frozen = {name: m for name, m in model.named_modules() if getattr(m, "role", None) == role}
    if learn == "chans":
        _check_spatial_weights(model, frozen)
    if not frozen:
        raise ConfigError(
            f"learn mode '{learn}' needs {role}-mixing layers, but {type(model).__name__} has none "
            "(it has no separable convolutions); use learn=full or a separable model"
        )
    for module in frozen.values():
        module.requires_grad_(False)


def _train_only(model: nn.Module, learn: str) -> None:
    """``norm`` / ``head``: freeze every parameter but those of the layer types :data:`_ONLY` names; a
    ConfigError where the model has none of a type the mode is about (``norm`` without norm layers would be
    ``head``)."""
    kinds = {layer_type(m) for m in model.modules() if next(m.parameters(recurse=False), None) is not None}
    wanted = "head" if learn == "head" else "norm"
    if wanted not in kinds:
        what = "a classifier head" if wanted == "head" else "normalisation layers with affine parameters"
        raise ConfigError(
            f"learn mode '{learn}' trains {what}, but {type(model).__name__} has none; "
            f"use another learn mode ({', '.join(m for m in LEARN_MODES if m != learn)})"
        )
    for module in model.modules():
        if layer_type(module) not in _ONLY[learn]:
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)


def _check_spatial_weights(model: nn.Module, spatial: dict[str, nn.Module]) -> None:
    """``chans`` needs spatial-mixing weights beyond a grayscale stem: a ConfigError that says why not."""
    stems = [name for name, m in spatial.items() if is_one_channel_conv(m)]
    if len(stems) < len(spatial):
        return
    if stems:
        problem = (
            f"would freeze only {', '.join(repr(s) for s in stems)}: a conv on the 1-channel input (depthwise "
            "only because grayscale images have one channel), not spatial mixing inside the model"
        )
    else:
        problem = "needs spatial-mixing layers, but the model has none"
    mixers = weightless_mixers(model)
    if mixers:
        kinds = " and ".join(f"{_WEIGHTLESS[kind]} (e.g. '{names[0]}')" for kind, names in mixers.items())
        reason = f"it mixes tokens by {kinds}, so it has no spatial-mixing weights to freeze"
    else:
        reason = "it has no depthwise convolutions (so no separable convolutions) and no token-mixing Linears"
    raise ConfigError(
        f"learn mode 'chans' {problem}; {reason}; use learn=full, learn=space (freezes the channel mixing: "
        "1x1 convs and per-position Linears), or a model whose spatial mixing has weights (depthwise convs: "
        "convnext_*, mobilenetv3_*, convmixer; token-mixing MLPs: mixer_*, resmlp_*, gmlp_*)"
    )


def configure_spatial_mixing(model: nn.Module, *, learn: str, filters: str | BankSpec, seed: int) -> None:
    """Initialise the depthwise filter banks from the bank spec ``filters`` (``smooth:1.5``; see
    :mod:`.filter_banks`), then apply the learn mode. Called at the end of every model constructor (through
    :class:`~spatialmix_cli.models.common.SpatialMixingArgs`), so learn mode and filters are constructor
    arguments, not classes."""
    init_filter_banks(model, filters, seed=seed)
    apply_learn_mode(model, learn)


def layer_type(module: nn.Module) -> str:
    """``spatial`` / ``channel`` / ``dense`` / ``head`` (from a ``role`` attribute), ``norm``, or ``other``."""
    role = getattr(module, "role", None)
    if role is not None:
        return str(role)
    if isinstance(module, NORMS):
        return "norm"
    if isinstance(module, nn.Linear):
        return "head"
    return "other"


def layer_counts(model: nn.Module) -> dict[str, int]:
    """How many modules with parameters of their own there are of each :func:`layer_type` (the
    ``--dry-run`` report: what the role tagging found)."""
    counts: dict[str, int] = {}
    for module in model.modules():
        if next(module.parameters(recurse=False), None) is not None:
            kind = layer_type(module)
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def param_report(model: nn.Module) -> dict[str, Any]:
    """Trainable and frozen parameter counts per layer type, and in total."""
    by_type: dict[str, dict[str, int]] = {}
    for module in model.modules():
        for param in module.parameters(recurse=False):
            row = by_type.setdefault(layer_type(module), {"trainable": 0, "frozen": 0})
            row["trainable" if param.requires_grad else "frozen"] += param.numel()
    trainable = sum(r["trainable"] for r in by_type.values())
    frozen = sum(r["frozen"] for r in by_type.values())
    return {
        "params_trainable": trainable,
        "params_frozen": frozen,
        "params_total": trainable + frozen,
        "by_type": dict(sorted(by_type.items())),
    }
