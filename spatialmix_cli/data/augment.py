"""Batched augmentation on the device: per-sample random crop (zero padding) and horizontal flip.

Written by hand rather than with ``torchvision.transforms.v2``: a v2 transform called on a batch draws one
set of random parameters for the whole batch (every image gets the same crop), while each image needs its
own. Random numbers come from an explicit CPU generator, so a batch is the same on every device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each side of ``images`` (B, C, H, W) by ``pad`` zeros and cut a random H×W window per image."""
    if pad <= 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(images.device)
    rows = (offsets[0].view(b, 1) + torch.arange(h, device=images.device)).view(b, 1, h, 1)
    cols = (offsets[1].view(b, 1) + torch.arange(w, device=images.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=images.device).view(b, 1, 1, 1)
    chans = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return padded[batch, chans, rows, cols]


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


def augment(images: torch.Tensor, *, crop_pad: int, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop then random flip, both per sample; dtype and device are kept (uint8 stays uint8)."""
    images = random_crop(images, crop_pad, generator)
    if hflip:
        images = random_hflip(images, generator)
    return images
