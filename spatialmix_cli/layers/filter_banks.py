"""Initial banks of depthwise (spatial) filters: random, same, box, identity, smooth.

Cazenavette et al. 2025, Sec. 3.1 and Fig. 3 (filter structure) and Fig. 7 (smoothed random filters).
Every bank is drawn from an explicit ``torch.Generator``, so the same seed gives bit-identical filters.

The builders are a dict registry (timm style): :data:`FILTER_BANKS` maps a bank's name to a :class:`BankDef`
(its builder). The names, their parameters and the spec grammar (``smooth:1.5``) are config's
(:mod:`spatialmix_cli.config.banks`), which the CLI's checks and help read without torch; a bank with a
parameter is its entry there and its builder here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config.banks import KEEPS_OWN, BankSpec, parse_bank
from ..config.limits import check_sigma
from ..errors import ConfigError
from ..seeding import derive_seed
from .roles import depth_multiplier, filter_bank_layers, is_token_mixer


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
    check_sigma("sigma", sigma)
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=bank.dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    out = F.conv2d(bank, g.view(1, 1, 1, -1), padding=(0, radius))
    out = F.conv2d(out, g.view(1, 1, -1, 1), padding=(radius, 0))
    norm_in = bank.flatten(1).norm(dim=1)
    norm_out = out.flatten(1).norm(dim=1).clamp_min(1e-12)
    return out * (norm_in / norm_out).view(-1, 1, 1, 1)


# --- the registry -----------------------------------------------------------------------------------------
# A builder gets (channels, kernel, depth_multiplier, generator, params) and returns the depthwise weight of
# shape (channels * depth_multiplier, 1, k, k); ``params`` holds every parameter the bank declares
# (config.banks.BANKS), filled.
BankBuilder = Callable[[int, int, int, torch.Generator, Mapping[str, float]], torch.Tensor]


@dataclass(frozen=True)
class BankDef:
    """How to build a bank, and how many bank-sized tensors building it keeps alive at once (``copies``,
    with the reason, for the spectrum command's memory check)."""

    build: BankBuilder | None  # None: keep the layer's own weights (the ``pretrained`` bank)
    copies: tuple[int, str] = (1, "")


def _same(channels: int, kernel: int, d: int, g: torch.Generator, p: Mapping[str, float]) -> torch.Tensor:
    # Output j of group c sees bank[j]: conv groups are contiguous, so repeat the whole bank per channel.
    return random_bank(d, kernel, g).repeat(channels, 1, 1, 1)


def _smooth(c: int, k: int, d: int, g: torch.Generator, p: Mapping[str, float]) -> torch.Tensor:
    return gaussian_smooth(random_bank(c * d, k, g), p["sigma"])


FILTER_BANKS: dict[str, BankDef] = {
    "random": BankDef(lambda c, k, d, g, p: random_bank(c * d, k, g)),
    "same": BankDef(_same),
    "box": BankDef(lambda c, k, d, g, p: box_bank(c * d, k)),
    "identity": BankDef(lambda c, k, d, g, p: identity_bank(c * d, k)),
    # smoothing keeps the bank and two convolution outputs alive
    "smooth": BankDef(_smooth, copies=(3, "smoothing copies")),
    KEEPS_OWN: BankDef(None),
}


def make_filter_bank(
    spec: str | BankSpec,
    channels: int,
    kernel: int,
    *,
    depth_multiplier: int = 1,
    generator: torch.Generator,
) -> torch.Tensor:
    """Weight of shape ``(channels * depth_multiplier, 1, k, k)`` for a depthwise conv, from the bank
    that ``spec`` names (see :data:`FILTER_BANKS`)."""
    bank = parse_bank(spec)
    build = FILTER_BANKS[bank.name].build
    if build is None:
        raise ConfigError(
            f"filter bank '{bank.name}' keeps a model's own filters; it has no filters of its own to draw"
        )
    return build(channels, kernel, depth_multiplier, generator, bank.params)


def init_filter_banks(model: nn.Module, spec: str | BankSpec, *, seed: int) -> int:
    """Overwrite the weight of every depthwise filter-bank layer of ``model`` (spatialmix's
    :class:`~.separable.DepthwiseConv2d`, and the convs :func:`~.roles.tag_roles` found depthwise) with the
    bank ``spec``; the ``pretrained`` bank leaves them as they are. Returns the number of layers set.

    Token-mixing Linears (spatial mixing, but no kernel) are no filter banks: ``random`` leaves them at the
    model's own random init, and a bank that shapes kernels (``box``, ``smooth``, ...) is refused on a
    model that has them, rather than setting its convs and silently leaving its token mixers alone.

    Each layer draws from its own generator, seeded with ``derive_seed(seed, "filters", <layer name>)``: a
    stream that neither PyTorch's default init (``create_model`` seeds it with ``derive_seed(seed, "init")``)
    nor any other layer uses, so the frozen banks are independent of every other parameter tensor (one
    generator seeded with ``seed`` itself would replay the init stream: the stem and the first bank would be
    the same random numbers).
    """
    bank_def = parse_bank(spec)
    if FILTER_BANKS[bank_def.name].build is None:
        return 0
    token_mixers = [name for name, m in model.named_modules() if is_token_mixer(m)]
    if token_mixers and bank_def.name != "random":
        raise ConfigError(
            f"filter bank '{bank_def.name}' sets depthwise conv kernels, but this model mixes space with "
            f"token-mixing Linears (e.g. '{token_mixers[0]}'), which have no kernel; use filters=random (they "
            "keep their random init) or filters=pretrained"
        )
    layers = filter_bank_layers(model)
    with torch.no_grad():  # the banks are set, not learned
        for name, layer in layers:
            kernel_h, kernel_w = layer.kernel_size
            if kernel_h != kernel_w:
                raise ConfigError(
                    f"filter banks need square kernels, but '{name}' is {kernel_h}x{kernel_w}; "
                    "filters: pretrained keeps the model's own"
                )
            bank = make_filter_bank(
                bank_def,
                layer.in_channels,
                kernel_h,
                depth_multiplier=depth_multiplier(layer),
                generator=torch.Generator().manual_seed(derive_seed(seed, "filters", name)),
            )
            layer.weight.copy_(bank.to(layer.weight.dtype))
    return len(layers)
