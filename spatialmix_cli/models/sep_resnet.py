"""Separable pre-activation ResNets (Cazenavette et al. 2025, Figs. 2, 4, 6): every k×k conv is a
depthwise k×k with depth multiplier 9 followed by a pointwise 1×1. See :mod:`.resnet` for the shapes."""

from __future__ import annotations

from typing import Any

from ._registry import register_model
from .resnet import PreActResNet, create_resnet

_SEP_CIFAR = dict(form="cifar", separable=True)
_SEP_IMAGENET = dict(form="imagenet", separable=True)


@register_model
def sep_resnet(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet, CIFAR form: 6n+2 layers (default depth 20, width 16, k3, d9)."""
    return create_resnet("sep_resnet", _SEP_CIFAR, kwargs)


@register_model
def sep_resnet_imagenet(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet, ImageNet form: 8n+2 layers (default depth 18, width 64, k3, d9)."""
    return create_resnet("sep_resnet_imagenet", _SEP_IMAGENET, {"depth": 18, **kwargs})


@register_model
def sep_resnet20(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet-20 (CIFAR form, n = 3)."""
    return create_resnet("sep_resnet20", {**_SEP_CIFAR, "depth": 20}, kwargs)


@register_model
def sep_resnet56(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet-56 (CIFAR form, n = 9)."""
    return create_resnet("sep_resnet56", {**_SEP_CIFAR, "depth": 56}, kwargs)


@register_model
def sep_resnet110(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet-110 (CIFAR form, n = 18)."""
    return create_resnet("sep_resnet110", {**_SEP_CIFAR, "depth": 110}, kwargs)


@register_model
def sep_resnet18_imagenet(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet-18 (ImageNet form, n = 2)."""
    return create_resnet("sep_resnet18_imagenet", {**_SEP_IMAGENET, "depth": 18}, kwargs)


@register_model
def sep_resnet34_imagenet(**kwargs: Any) -> PreActResNet:
    """Separable pre-activation ResNet-34 in the uniform 8n+2 form (n = 4 blocks per stage)."""
    return create_resnet("sep_resnet34_imagenet", {**_SEP_IMAGENET, "depth": 34}, kwargs)
