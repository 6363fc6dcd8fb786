"""Initial banks of depthwise (spatial) filters: random, same, box, identity, smooth.

Cazenavette et al. 2025, Sec. 3.1 and Fig. 3 (filter structure) and Fig. 7 (smoothed random filters).
Every bank is drawn from an explicit ``torch.Generator``, so the same seed gives bit-identical filters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, check_choice
from ..limits import check_sigma
from ..seeding import derive_seed
from .separable import DepthwiseConv2d

FILTER_BANKS: tuple[str, ...] = ("random", "same", "box", "identity", "smooth")


def random_bank(n: int, kernel: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` independent k×k filters from PyTorch's default Conv2d init.

    ``nn.Conv2d`` uses kaiming_uniform(a=√5), i.e. U(-1/√fan_in, 1/√fan_in); a depthwise filter has
    fan_in = k², so the bound is 1/k.
    """
    bound = 1.0 / kernel
    return torch.empty(n, 1, kernel, kernel).uniform_(-bound, bound, generator=generator)


def box_bank(n: int, kernel: int) -> torch.Tensor:
    """``n`` copies of the k×k mean filter (every tap 1/k²)."""
    return torch.full((n, 1, kernel, kernel), 1.0 / kernel**2)


def identity_bank(n: int, kernel: int) -> torch.Tensor:
    """``n`` copies of the centred delta; the centre is ``(k-1)//2`` so that PyTorch's 'same' padding of
    an even kernel also gives the identity map."""
    bank = torch.zeros(n, 1, kernel, kernel)
    centre = (kernel - 1) // 2
    bank[:, 0, centre, centre] = 1.0
    return bank


def gaussian_smooth(bank: torch.Tensor, sigma: float) -> torch.Tensor:
    """Low-pass each filter with a Gaussian of std ``sigma`` (taps), then rescale each filter back to its
    original L2 norm, so smoothing changes the spectrum and not the gain.

    Written with ``F.conv2d`` rather than ``torchvision.transforms.v2.functional.gaussian_blur`` because the
    latter pads by reflection, which needs the blur kernel smaller than the (tiny) filter and folds energy
    back from the borders; a filter is zero outside its support, so zero padding is the right model.
    """
    check_sigma("smooth_sigma", sigma)
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=bank.dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    out = F.conv2d(bank, g.view(1, 1, 1, -1), padding=(0, radius))
    out = F.conv2d(out, g.view(1, 1, -1, 1), padding=(radius, 0))
    norm_in = bank.flatten(1).norm(dim=1)
    norm_out = out.flatten(1).norm(dim=1).clamp_min(1e-12)
    return out * (norm_in / norm_out).view(-1, 1, 1, 1)


def make_filter_bank(
    kind: str,
    channels: int,
    kernel: int,
    *,
    depth_multiplier: int = 1,
    generator: torch.Generator,
    smooth_sigma: float = 1.0,
) -> torch.Tensor:
    """Weight of shape ``(channels * depth_multiplier, 1, k, k)`` for a depthwise conv.

    - ``random``: independent filters for every output (the default init);
    - ``same``: one random bank of ``depth_multiplier`` filters, repeated for every input channel;
    - ``box`` / ``identity``: mean filter / centred delta everywhere;
    - ``smooth``: ``random``, then :func:`gaussian_smooth` with ``smooth_sigma``.
    """
    check_choice("filter bank", kind, FILTER_BANKS)
    n = channels * depth_multiplier
    if kind == "random":
        return random_bank(n, kernel, generator)
    if kind == "same":
        # Output j of group c sees bank[j]: conv groups are contiguous, so repeat the whole bank per channel.
        return random_bank(depth_multiplier, kernel, generator).repeat(channels, 1, 1, 1)
    if kind == "box":
        return box_bank(n, kernel)
    if kind == "identity":
        return identity_bank(n, kernel)
    return gaussian_smooth(random_bank(n, kernel, generator), smooth_sigma)


@torch.no_grad()
def init_filter_banks(model: nn.Module, kind: str, *, seed: int, smooth_sigma: float = 1.0) -> int:
    """Overwrite the weight of every :class:`DepthwiseConv2d` in ``model`` with a bank of ``kind``. Returns
    the number of layers set.

    Each layer draws from its own generator, seeded with ``derive_seed(seed, "filters", <layer name>)``: a
    stream that neither PyTorch's default init (``create_model`` seeds it with ``derive_seed(seed, "init")``)
    nor any other layer uses, so the frozen banks are independent of every other parameter tensor (one
    generator seeded with ``seed`` itself would replay the init stream: the stem and the first bank would be
    the same random numbers).
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, DepthwiseConv2d)]
    for name, layer in layers:
        channels = layer.in_channels
        kernel_h, kernel_w = layer.kernel_size
        if kernel_h != kernel_w:
            raise ConfigError(f"filter banks need square kernels, got {layer.kernel_size}")
        bank = make_filter_bank(
            kind,
            channels,
            kernel_h,
            depth_multiplier=layer.depth_multiplier,
            generator=torch.Generator().manual_seed(derive_seed(seed, "filters", name)),
            smooth_sigma=smooth_sigma,
        )
        layer.weight.copy_(bank.to(layer.weight.dtype))
    return len(layers)
