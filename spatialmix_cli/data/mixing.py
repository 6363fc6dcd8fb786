"""MixUp / CutMix on training batches (the ConvMixer ImageNet recipe's regularisers), with torchvision's
``transforms.v2.MixUp`` / ``CutMix``. Labels become soft (N, classes); the loss takes them as
probabilities and accuracy compares arg-maxes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

Mixer = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def make_mixer(mixup: float, cutmix: float, num_classes: int) -> Mixer | None:
    """A function ``(images, labels, seed) -> (mixed images, soft labels)``, or None when both alphas
    are 0. With both on, each batch gets one of the two at random (as timm does)."""
    choices: list[v2.Transform] = []
    if mixup > 0:
        choices.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        choices.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
    if not choices:
        return None
    transform = choices[0] if len(choices) == 1 else v2.RandomChoice(choices)

    def mix(images: torch.Tensor, labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        # v2 draws from the global CPU generator: fork it and seed it per step, so a resumed run mixes
        # exactly as an uninterrupted one and the caller's RNG is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return transform(images.clone(), labels)  # v2.MixUp / CutMix write into the batch in place

    return mix
