"""The model check of a config: build its model on the meta device and run one forward pass, so a bad
model argument fails before any data is loaded or anything is written (config itself imports no models)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..config.names import is_timm_name
from ..config.train import TrainConfig
from ..data.info import dataset_info
from ..errors import ConfigError
from ..layers.roles import is_depthwise
from ._registry import check_model_name, create_model


def check_model(cfg: TrainConfig, where: str = "config") -> None:
    """Build ``cfg``'s model on the meta device (no memory, ~ms; more for ImageNet-sized ones) and run it on
    one image of the dataset's size: errors name ``where``. A depthwise kernel larger than the taps that can
    reach its feature map is an error (a warning for a timm model, whose architecture is fixed)."""
    try:
        check_model_name(cfg.arch)  # timm installed and the name known (config checks the spelling only)
    except ConfigError as exc:
        raise ConfigError(f"{where}.arch: {exc}") from None
    info = dataset_info(cfg.dataset)
    try:
        with torch.device("meta"):
            model = create_model(cfg.arch, **cfg.model_kwargs(info))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    size = cfg.image_size or info.image_size
    try:  # a forward pass on the meta device: shapes only, no memory, no arithmetic
        seen = _depthwise_sizes(model, torch.empty(1, info.in_chans, size, size, device="meta"))
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


def _depthwise_sizes(
    model: nn.Module, image: torch.Tensor
) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    """``(name, kernel size, input map size)`` of every depthwise conv as ``model`` runs on ``image``."""
    seen: list[tuple[str, tuple[int, int], tuple[int, int]]] = []

    def spatial(name: str) -> Any:
        def record(module: nn.Conv2d, args: tuple[torch.Tensor, ...]) -> None:
            seen.append((name, tuple(module.kernel_size), tuple(args[0].shape[-2:])))  # type: ignore[arg-type]

        return record

    hooks = [m.register_forward_pre_hook(spatial(n)) for n, m in model.named_modules() if is_depthwise(m)]
    try:
        with warnings.catch_warnings():  # torch's own notes (even kernel with 'same' padding) once, later
            warnings.simplefilter("ignore")
            model.eval()(image)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _check_kernels(arch: str, seen: list[tuple[str, tuple[int, int], tuple[int, int]]]) -> None:
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
