"""Initial banks of depthwise (spatial) filters: random, same, box, identity, smooth.

Cazenavette et al. 2025, Sec. 3.1 and Fig. 3 (filter structure) and Fig. 7 (smoothed random filters).
Every bank is drawn from an explicit ``torch.Generator``, so the same seed gives bit-identical filters.

The banks are a dict registry (timm style): :data:`FILTER_BANKS` maps a name to a :class:`BankDef` (its
builder and its parameters with defaults and checks), so adding a bank is one entry. A bank is chosen
by a *spec*, ``name[:value...]`` (``smooth:1.5``; parameters positional in declaration order, or
``key=value``), parsed into a :class:`BankSpec` by :func:`parse_bank`; :func:`format_bank` prints it back
in canonical form, leaving out trailing default values, so ``smooth:1`` prints as plain ``smooth``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ..config.limits import check_sigma
from ..errors import ConfigError, check_choice, did_you_mean
from ..seeding import derive_seed

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported inside the functions that draw banks: the registry's names and the spec parsing (what
# a config check and the CLI's --help read) need none of it.


def random_bank(n: int, kernel: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` independent k×k filters from PyTorch's default Conv2d init.

    ``nn.Conv2d`` uses kaiming_uniform(a=√5), i.e. U(-1/√fan_in, 1/√fan_in); a depthwise filter has
    fan_in = k², so the bound is 1/k.
    """
    import torch

    bound = 1.0 / kernel
    return torch.empty(n, 1, kernel, kernel).uniform_(-bound, bound, generator=generator)


def box_bank(n: int, kernel: int) -> torch.Tensor:
    """``n`` copies of the k×k mean filter (every tap 1/k²)."""
    import torch

    return torch.full((n, 1, kernel, kernel), 1.0 / kernel**2)


def identity_bank(n: int, kernel: int) -> torch.Tensor:
    """``n`` copies of the centred delta; the centre is ``(k-1)//2`` so that PyTorch's 'same' padding of
    an even kernel also gives the identity map."""
    import torch

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
    import torch
    import torch.nn.functional as F

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
# shape (channels * depth_multiplier, 1, k, k); ``params`` holds every parameter of its BankDef, filled.
BankBuilder = Callable[[int, int, int, "torch.Generator", Mapping[str, float]], "torch.Tensor"]


class BankParam(NamedTuple):
    """One parameter of a bank: its default, a check that raises a ConfigError naming the allowed range,
    and the symbol that labels it in tables and figures."""

    default: float
    check: Callable[[float], None]
    symbol: str


@dataclass(frozen=True)
class BankDef:
    """A filter bank: how to build it, its parameters, and how many bank-sized tensors building it keeps
    alive at once (``copies``, with the reason, for the spectrum command's memory check)."""

    build: BankBuilder | None  # None: keep the layer's own weights (the ``pretrained`` bank)
    params: Mapping[str, BankParam] = field(default_factory=dict)
    copies: tuple[int, str] = (1, "")


def _check_smooth_sigma(sigma: float) -> None:
    check_sigma("smooth:σ", sigma)  # as the spec writes it: filters smooth:0.5


def _same(channels: int, kernel: int, d: int, g: torch.Generator, p: Mapping[str, float]) -> torch.Tensor:
    # Output j of group c sees bank[j]: conv groups are contiguous, so repeat the whole bank per channel.
    return random_bank(d, kernel, g).repeat(channels, 1, 1, 1)


FILTER_BANKS: dict[str, BankDef] = {
    # independent filters for every output (the default init)
    "random": BankDef(lambda c, k, d, g, p: random_bank(c * d, k, g)),
    # one random bank of depth_multiplier filters, repeated for every input channel
    "same": BankDef(_same),
    # the mean filter / the centred delta everywhere
    "box": BankDef(lambda c, k, d, g, p: box_bank(c * d, k)),
    "identity": BankDef(lambda c, k, d, g, p: identity_bank(c * d, k)),
    # random, then gaussian_smooth with std sigma (taps); smoothing keeps the bank and two convolution outputs
    "smooth": BankDef(lambda c, k, d, g, p: gaussian_smooth(random_bank(c * d, k, g), p["sigma"]),
                      params={"sigma": BankParam(1.0, _check_smooth_sigma, "σ")}, copies=(3, "smoothing copies")),
    # keep the filters the model was built with: timm's pretrained ones (pretrained=true), else its own init
    "pretrained": BankDef(None),
}  # fmt: skip
# The banks that draw filters of their own (what `spatialmix spectrum --random` can analyse).
DRAWN_BANKS: tuple[str, ...] = tuple(name for name, bank in FILTER_BANKS.items() if bank.build is not None)


@dataclass(frozen=True)
class BankSpec:
    """A bank and the value of each of its parameters (every parameter present: defaults filled in).
    ``str(spec)`` is the canonical text form (:func:`format_bank`)."""

    name: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_bank(self)

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.params.items())))

    @property
    def definition(self) -> BankDef:
        return FILTER_BANKS[self.name]

    @property
    def label(self) -> str:
        """Name and every parameter, for tables and figures: ``smooth σ=1``, ``random``."""
        symbols = self.definition.params
        return " ".join([self.name, *(f"{symbols[k].symbol}={v:g}" for k, v in self.params.items())])


def bank_spec(name: str, params: Mapping[str, float] | None = None) -> BankSpec:
    """A checked :class:`BankSpec`: ``name`` a registered bank, ``params`` some of its parameters (the
    others take their defaults), each within its range."""
    definition = FILTER_BANKS[check_choice("filter bank", name, FILTER_BANKS)]
    given = dict(params or {})
    for key, value in given.items():
        if key not in definition.params:
            allowed = ", ".join(definition.params) or "none"
            raise ConfigError(
                f"filter bank '{name}' has no parameter '{key}'{did_you_mean(key, definition.params)}; "
                f"its parameters: {allowed}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"filter bank '{name}' parameter '{key}' must be a number, got {value!r}")
    values = {key: float(given.get(key, p.default)) for key, p in definition.params.items()}
    for key, value in values.items():
        definition.params[key].check(value)
    return BankSpec(name, values)


def parse_bank(spec: str | BankSpec) -> BankSpec:
    """``"smooth:1.5"`` -> ``BankSpec("smooth", {"sigma": 1.5})``; ``"smooth"`` takes the default σ 1.0.
    Values are positional (in the order the bank declares its parameters) or ``key=value``."""
    if isinstance(spec, BankSpec):
        return bank_spec(spec.name, spec.params)
    if not isinstance(spec, str):
        raise ConfigError(
            f"a filter bank is a name such as 'random' or a spec such as 'smooth:1.5', got {spec!r}"
        )
    name, *parts = spec.split(":")
    definition = FILTER_BANKS[check_choice("filter bank", name, FILTER_BANKS)]
    keys, params = list(definition.params), {}
    if len(parts) > len(keys):
        takes = f"{len(keys)} parameter(s): {', '.join(keys)}" if keys else "no parameters"
        raise ConfigError(f"filter bank '{name}' takes {takes}; got '{spec}'")
    for position, part in enumerate(parts):
        key, _, text = part.rpartition("=")
        key = key or keys[position]
        try:
            params[key] = float(text)
        except ValueError:
            raise ConfigError(
                f"filter bank '{name}' parameter '{key}' must be a number, got '{text}'"
            ) from None
    return bank_spec(name, params)


def _number(value: float) -> str:
    """The shortest text that reads back as ``value`` (``2``, ``1.5``, ``0.1``)."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def format_bank(spec: str | BankSpec) -> str:
    """Canonical text form: the name, then the parameter values up to the last one that differs from its
    default (``smooth:2``; ``smooth`` at σ 1, so records and names written before specs read the same)."""
    spec = parse_bank(spec)
    defaults = [p.default for p in spec.definition.params.values()]
    values = list(spec.params.values())
    while values and values[-1] == defaults[len(values) - 1]:
        values.pop()
    return ":".join([spec.name, *map(_number, values)])


def with_smooth_sigma(filters: str | BankSpec, smooth_sigma: float | None) -> BankSpec:
    """Legacy path, for the transition from the separate ``smooth_sigma`` key to specs: the spec
    ``filters``, with ``smooth_sigma`` as σ when ``filters`` is the plain name ``smooth``. A σ that the
    spec itself gives (``smooth:2``) wins; ``smooth_sigma`` with any other bank is ignored, as it always
    was. Records written before specs carry the key (config.yaml, checkpoint model kwargs); today's
    config writes ``filters: smooth:0.5`` and has no ``smooth_sigma``."""
    spec = parse_bank(filters)
    if smooth_sigma is None or filters != "smooth":
        return spec
    return bank_spec("smooth", {"sigma": smooth_sigma})


def smooth_sigma_of(spec: BankSpec) -> float | None:
    """Legacy field: σ of a ``smooth`` bank, None for the others (the ``smooth_sigma`` of JSON records)."""
    return spec.params["sigma"] if spec.name == "smooth" else None


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
    if bank.definition.build is None:
        raise ConfigError(
            f"filter bank '{bank.name}' keeps a model's own filters; it has no filters of its own to draw"
        )
    return bank.definition.build(channels, kernel, depth_multiplier, generator, bank.params)


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
    import torch

    from .roles import depth_multiplier, filter_bank_layers, is_token_mixer

    bank_def = parse_bank(spec)
    if bank_def.definition.build is None:
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
