"""Filter banks to analyse: fresh draws of the initial banks, or the depthwise layers of a checkpoint."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...config.banks import BankSpec, parse_bank, smooth_sigma_of
from ...config.limits import DEFAULT_LEVEL, DEFAULT_PAD, DEFAULT_THRESHOLD
from ...config.train import TrainConfig
from ...data.budget import check_fits
from ...data.info import dataset_info
from ...errors import ConfigError
from ...layers.filter_banks import FILTER_BANKS, make_filter_bank
from ...layers.roles import filter_bank_layers, is_token_mixer
from ...models import create_model
from ...seeding import derive_seed
from ...store.checkpoint import checkpoint_file, load_checkpoint
from .envelope import BankSpectrum, bank_spectrum, check_level, check_pad, check_threshold


def draw_bank(
    spec: str | BankSpec, n: int, kernel: int, *, multiplier: int = 1, seed: int = 0
) -> torch.Tensor:
    """``n`` filters (n, 1, k, k) of bank ``spec`` (``random``, ``smooth:1.5``, ...) as a depthwise layer
    with multiplier ``multiplier`` draws them: ``make_filter_bank(spec, ceil(n / d), k, depth_multiplier=d)[:n]``.

    The generator is seeded with ``derive_seed(seed, "bank", <bank name>, n, kernel, multiplier)``: banks of
    different sizes are independent draws. (Seeded with ``seed`` itself, the N = 1 bank would be the first
    filter of the N = 4 bank, and so on: nested banks, whose coverage grows with N by construction — at a
    fixed level a new filter can only add frequencies; see :func:`~.envelope.coverage`.) The
    bank's parameters are not in the seed: ``smooth:1`` and ``smooth:2`` smooth the same random draw."""
    bank = parse_bank(spec)
    if n < 1 or kernel < 1 or multiplier < 1:
        raise ConfigError(f"need n >= 1, kernel >= 1 and multiplier >= 1, got {n}, {kernel}, {multiplier}")
    # n x k^2 float32 filters, times the bank-sized tensors alive at once while it is built (3 when smoothed)
    copies, why = FILTER_BANKS[bank.name].copies
    check_fits(
        n * kernel * kernel * 4 * copies,
        f"a bank of {n} filters of {kernel}x{kernel}",
        rule=f"{n} x {kernel}^2 x 4 bytes{f' x {copies} ({why})' if copies > 1 else ''}",
        fix="lower N (--random)",
    )
    generator = torch.Generator().manual_seed(derive_seed(seed, "bank", bank.name, n, kernel, multiplier))
    filters = make_filter_bank(
        bank, math.ceil(n / multiplier), kernel, depth_multiplier=multiplier, generator=generator
    )
    return filters[:n]


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


@dataclass(frozen=True)
class DrawnSpectrum:
    """Mean (and, over several draws, std) coverage, peak-relative coverage and high-frequency share of
    fresh banks of one spec and size; ``first`` is the first draw's spectrum (its envelope is the one
    shown)."""

    bank: BankSpec
    n: int
    kernel: int
    multiplier: int
    seed: int
    draws: int
    coverage: float
    coverage_std: float | None
    high_freq_share: float
    high_freq_share_std: float | None
    peak_relative_coverage: float
    peak_relative_coverage_std: float | None
    first: BankSpectrum = field(repr=False, compare=False)
    coverages: tuple[float, ...] = ()  # every draw's coverage (the independent samples behind the mean)

    @property
    def filters(self) -> str:
        """The bank's name (``smooth``; its parameters are in :attr:`bank`)."""
        return self.bank.name

    @property
    def smooth_sigma(self) -> float | None:
        """Legacy field of the JSON record: σ of a ``smooth`` bank, None for the others."""
        return smooth_sigma_of(self.bank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "kernel": self.kernel,
            "filters": self.filters,
            "smooth_sigma": self.smooth_sigma,
            "multiplier": self.multiplier,
            "seed": self.seed,
            "draws": self.draws,
            "coverage": self.coverage,
            "coverage_std": self.coverage_std,
            "peak_relative_coverage": self.peak_relative_coverage,
            "peak_relative_coverage_std": self.peak_relative_coverage_std,
            "high_freq_share": self.high_freq_share,
            "high_freq_share_std": self.high_freq_share_std,
        }


def drawn_spectrum(
    spec: str | BankSpec,
    n: int,
    kernel: int,
    *,
    multiplier: int = 1,
    seed: int = 0,
    draws: int = 1,
    pad: int = DEFAULT_PAD,
    threshold: float = DEFAULT_THRESHOLD,
    level: float = DEFAULT_LEVEL,
) -> DrawnSpectrum:
    """Spectra of ``draws`` fresh banks (seeds ``seed .. seed + draws - 1``), averaged."""
    if draws < 1:
        raise ConfigError(f"draws must be >= 1, got {draws}")
    check_pad(pad, kernel)
    check_threshold(threshold)
    check_level(level)
    bank = parse_bank(spec)
    first, cov, rel, hfs = None, [], [], []
    for i in range(draws):  # only the first envelope is kept: memory does not grow with the draws
        filters = draw_bank(bank, n, kernel, multiplier=multiplier, seed=seed + i)
        spectrum = bank_spectrum(filters, pad, threshold, level=level)
        if first is None:
            first = spectrum
        cov.append(spectrum.coverage)
        rel.append(spectrum.peak_relative_coverage)
        hfs.append(spectrum.high_freq_share)
    assert first is not None
    return DrawnSpectrum(
        bank=bank,
        n=n,
        kernel=kernel,
        multiplier=multiplier,
        seed=seed,
        draws=draws,
        coverage=statistics.fmean(cov),
        coverage_std=_std(cov),
        high_freq_share=statistics.fmean(hfs),
        high_freq_share_std=_std(hfs),
        peak_relative_coverage=statistics.fmean(rel),
        peak_relative_coverage_std=_std(rel),
        first=first,
        coverages=tuple(cov),
    )


def depthwise_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights (C·d, 1, k, k) of the model's depthwise layers, in module order."""
    return [m.weight.detach().cpu() for _, m in filter_bank_layers(model)]


def initial_banks(cfg: TrainConfig) -> list[torch.Tensor]:
    """The depthwise banks (C·d, 1, k, k) a run of ``cfg`` starts from, in module order: rebuilt with
    ``create_model`` from the config alone (the whole model is a function of its seed and sizes), so a chans
    run's frozen banks are known without its weights. Not for ``pretrained`` timm runs (their start is
    downloaded): a ConfigError."""
    if cfg.pretrained:
        raise ConfigError(
            f"a pretrained '{cfg.arch}' starts from downloaded weights: its banks need the run's"
        )
    return depthwise_weights(create_model(cfg.arch, **cfg.model_kwargs(dataset_info(cfg.dataset))))


def disjoint_subset_coverage(
    bank: torch.Tensor,
    sizes: tuple[int, ...],
    *,
    pad: int = DEFAULT_PAD,
    level: float = DEFAULT_LEVEL,
) -> dict[int, float]:
    """Coverage of disjoint consecutive blocks of ``bank``'s filters, one block per size (the first ``sizes[0]``
    filters, then the next ``sizes[1]``, ...): independent sub-banks of an i.i.d. random bank, so comparing
    sizes is not rigged the way nested prefixes would be (a superset's envelope can only cover more).
    Sizes that no longer fit are left out."""
    out, start = {}, 0
    for n in sizes:
        if start + n > bank.shape[0]:
            break
        out[n] = bank_spectrum(bank[start : start + n], pad, level=level).coverage
        start += n
    return out


@dataclass(frozen=True)
class LayerSpectrum:
    layer: int
    spectrum: BankSpectrum
    name: str = ""  # the module's name in the model (model.stages.0.blocks.0.conv_dw for a timm ConvNeXt)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, **self.spectrum.to_dict()}


@dataclass(frozen=True)
class CheckpointSpectra:
    """Per-layer spectra of a checkpoint's depthwise filters."""

    checkpoint: str
    arch: str
    learn: str
    filters: str
    layers: list[LayerSpectrum]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "arch": self.arch,
            "learn": self.learn,
            "filters": self.filters,
            "layers": [x.to_dict() for x in self.layers],
        }


def checkpoint_spectra(
    path: str | Path,
    layers: list[int] | None = None,
    *,
    pad: int = DEFAULT_PAD,
    threshold: float = DEFAULT_THRESHOLD,
    level: float = DEFAULT_LEVEL,
) -> CheckpointSpectra:
    """Spectra of the depthwise layers ``layers`` (0-based; None: all) of a checkpoint or run directory."""
    check_threshold(threshold)
    check_level(level)
    file = checkpoint_file(path)
    ckpt = load_checkpoint(file)
    named = filter_bank_layers(ckpt.model)
    weights = [m.weight.detach().cpu() for _, m in named]
    arch = str(ckpt.meta["model"]["name"])
    if not weights:
        mixers = [name for name, m in ckpt.model.named_modules() if is_token_mixer(m)]
        how = (
            f" (its spatial mixing is token-mixing Linears, e.g. '{mixers[0]}': no kernels)" if mixers else ""
        )
        raise ConfigError(f"{file}: model '{arch}' has no depthwise (spatial mixing) layers to analyse{how}")
    chosen = list(range(len(weights))) if layers is None else layers
    for i in chosen:
        if not 0 <= i < len(weights):
            raise ConfigError(
                f"layer {i} is out of range: {file} has {len(weights)} depthwise layers (0..{len(weights) - 1})"
            )
    for i in chosen:
        check_pad(pad, max(weights[i].shape[-2:]))
    return CheckpointSpectra(
        checkpoint=str(file),
        arch=arch,
        learn=ckpt.learn,
        filters=ckpt.filters,
        layers=[
            LayerSpectrum(i, bank_spectrum(weights[i], pad, threshold, level=level), named[i][0])
            for i in chosen
        ],
    )
