"""The model check of a config: build its model on the meta device and run one forward pass, so a bad
model argument fails before any data is loaded or anything is written (config itself imports no models)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..config.names import is_timm_name
from ..config.train import TrainConfig
from ..data.info import DatasetInfo, dataset_info
from ..errors import ConfigError
from ..layers.roles import is_depthwise
from . import timm_weights
from ._registry import check_model_name, create_model
from .timm_models import BUILD_ERRORS, TimmBuildError, import_timm, one_line, timm_name


def check_model(cfg: TrainConfig, where: str = "config") -> None:
    """Build ``cfg``'s model on the meta device (no memory, ~ms; more for ImageNet-sized ones) and run it on
    one image of the dataset's size: errors name ``where``. A depthwise kernel larger than the taps that can
    reach its feature map is an error (a warning for a timm model, whose architecture is fixed). A timm
    model must also give one logit per class (:func:`_check_timm`), and find its pretrained weights."""
    try:
        check_model_name(cfg.arch)  # timm installed and the name known (config checks the spelling only)
    except ConfigError as exc:
        raise ConfigError(f"{where}.arch: {exc}") from None
    info = dataset_info(cfg.dataset)
    size = cfg.image_size or info.image_size
    if is_timm_name(cfg.arch):
        _check_kernels(cfg.arch, _check_timm(cfg, info, size, where))
        return
    try:
        with torch.device("meta"):
            model = create_model(cfg.arch, **cfg.model_kwargs(info))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:  # a forward pass on the meta device: shapes only, no memory, no arithmetic
        seen, _ = _depthwise_sizes(model, torch.empty(1, info.in_chans, size, size, device="meta"))
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).split("\n")[0]
        raise ConfigError(
            f"{where}: model '{cfg.arch}' cannot run on the {size}x{size} images of '{cfg.dataset}' "
            f"({reason}); use a smaller patch / kernel / depth or a larger image_size"
        ) from None
    _check_kernels(cfg.arch, seen)


def check_models(configs: Iterable[tuple[TrainConfig, str]]) -> None:
    """:func:`check_model` of each ``(config, where)``: for the runs about to start, before any of them does."""
    for cfg, where in configs:
        check_model(cfg, where)


_Seen = list[tuple[str, tuple[int, int], tuple[int, int]]]
# What a timm model's forward raises on arguments or sizes it cannot run with (its asserts on the input
# size, a feature list where a tensor was expected...): the model check reports them as the config's fault.
_TIMM_FORWARD_ERRORS = (*BUILD_ERRORS, AttributeError)


def _check_timm(cfg: TrainConfig, info: DatasetInfo, size: int, where: str) -> _Seen:
    """A timm model builds, runs on one ``size`` image and gives ``(1, num_classes)`` logits, and its
    pretrained weights are at hand; else a ConfigError naming the argument at fault (:func:`_blame`)."""
    kwargs = cfg.model_kwargs(info)
    try:
        outcome = _timm_trial(cfg.arch, kwargs, info, size)
        if isinstance(outcome, str):
            raise ConfigError(_blame(cfg, kwargs, info, size, outcome))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if cfg.pretrained:  # the weights' own check: a meta build never loads them
        try:
            timm_weights.pretrained_kwargs(import_timm(), timm_name(cfg.arch))
        except ConfigError as exc:
            raise ConfigError(f"{where}.pretrained: {exc}") from None
    return outcome


def _timm_trial(arch: str, kwargs: dict[str, Any], info: DatasetInfo, size: int) -> _Seen | str:
    """The depthwise convs a meta build of ``arch`` with ``kwargs`` meets on one ``size`` image, or, when
    it does not build, fails on the image or does not give ``(1, num_classes)`` logits, why (one line)."""
    try:
        with torch.device("meta"):
            model = create_model(arch, **kwargs)
    except TimmBuildError as exc:
        return exc.reason
    try:
        seen, out = _depthwise_sizes(model, torch.empty(1, info.in_chans, size, size, device="meta"))
    except _TIMM_FORWARD_ERRORS as exc:
        return one_line(exc)
    expected = (1, info.num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        return f"it gives {_describe(out)}, not one logit per class {expected}"
    return seen


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, (list, tuple, dict)):
        return f"a {type(out).__name__} of {len(out)}"
    return f"a {type(out).__name__}"


def _blame(cfg: TrainConfig, kwargs: dict[str, Any], info: DatasetInfo, size: int, reason: str) -> str:
    """The message for a timm model that failed with ``reason``, naming what is at fault: the data's
    image size when the model fails without any of the user's ``model.KEY`` arguments, else the first of
    those that fails on its own, else all of them together. Each guess is one more meta build."""
    name, given = timm_name(cfg.arch), kwargs["model_args"]
    spelled = {key: f"model.{key}={json.dumps(value)}" for key, value in given.items()}
    bare = _timm_trial(cfg.arch, {**kwargs, "model_args": {}}, info, size)
    if isinstance(bare, str):
        with_args = f", with or without {', '.join(spelled.values())}," if given else ""
        return (
            f"timm model '{name}' cannot run on the {size}x{size} images of '{cfg.dataset}'{with_args} "
            f"({bare}); use a larger image_size (--image-size N) or another model"
        )
    for key, value in given.items():
        alone = _timm_trial(cfg.arch, {**kwargs, "model_args": {key: value}}, info, size)
        if isinstance(alone, str):
            return (
                f"timm model '{name}' does not work with {spelled[key]} ({alone}); give model.{key} a "
                f"value that '{name}' takes, or leave it out"
            )
    return (
        f"timm model '{name}' does not work with {' and '.join(spelled.values())} together ({reason}); "
        "change one of them"
    )


def _depthwise_sizes(model: nn.Module, image: torch.Tensor) -> tuple[_Seen, Any]:
    """``(name, kernel size, input map size)`` of every depthwise conv as ``model`` runs on ``image``, and
    what the model gives."""
    seen: _Seen = []

    def spatial(name: str) -> Any:
        def record(module: nn.Conv2d, args: tuple[torch.Tensor, ...]) -> None:
            seen.append((name, tuple(module.kernel_size), tuple(args[0].shape[-2:])))  # type: ignore[arg-type]

        return record

    hooks = [m.register_forward_pre_hook(spatial(n)) for n, m in model.named_modules() if is_depthwise(m)]
    try:
        with warnings.catch_warnings():  # torch's own notes (even kernel with 'same' padding) once, later
            warnings.simplefilter("ignore")
            out = model.eval()(image)
    finally:
        for hook in hooks:
            hook.remove()
    return seen, out


def _check_kernels(arch: str, seen: _Seen) -> None:
    for name, (kh, kw), (h, w) in seen:
        # Only 2S - 1 taps of a kernel can reach an S-pixel map; the others multiply padding zeros, at a
        # cost that grows with k^2 (a 1001-tap kernel on a 32-px map computes ~10^5 times too much).
        if kh > 2 * h - 1 or kw > 2 * w - 1:
            problem = (
                f"the {kh}x{kw} depthwise kernel of '{name}' is larger than the {2 * h - 1}x"
                f"{2 * w - 1} taps that can reach its {h}x{w} feature map (the rest only multiply padding "
                "zeros)"
            )
            if is_timm_name(arch):  # someone else's fixed architecture: say so, once, and go on
                hint = "a larger image_size gives every stage a map its kernel fits"
                warnings.warn(f"{problem}; {hint}", stacklevel=3)
                break
            raise ConfigError(f"{problem}; use a smaller kernel, a smaller patch or a larger image_size")
