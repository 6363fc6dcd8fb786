"""One fixed random permutation σ of pixel positions: the same for every image, all channels together."""

from __future__ import annotations

import torch


def make_permutation(height: int, width: int, seed: int) -> torch.Tensor:
    """σ as a LongTensor of the ``height·width`` flat pixel positions, drawn from its own seeded generator
    (so it depends on ``seed`` only, never on the global RNG or on the model's seed)."""
    return torch.randperm(height * width, generator=torch.Generator().manual_seed(seed))


def scramble(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``out[..., j] = images[..., σ(j)]`` over flat pixel positions of an (N, C, H, W) batch."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h * w)[:, :, perm.to(images.device)].reshape(n, c, h, w)


def inverse(perm: torch.Tensor) -> torch.Tensor:
    """σ⁻¹, so that ``scramble(scramble(x, σ), σ⁻¹) == x`` exactly."""
    return torch.argsort(perm)


def unscramble(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    return scramble(images, inverse(perm))
