"""Spectral envelope of a bank of 2-D filters, its coverage and its high-frequency share.

Cazenavette et al. 2025, Fig. 1, 8 and 9: the envelope is the largest |DFT| over a bank's filters at every
frequency. A bank *covers* the frequencies where some filter, scaled to unit energy, passes at least
``level`` times the flat spectrum of the same energy: with the unnormalised DFT a unit-energy filter has
mean |H|² = 1 over the P×P frequencies (Parseval), and a flat one (a delta) |H| = 1 at every frequency.
The level is fixed, not set by the bank, so adding a filter can only raise the unit-energy envelope and
never lowers the coverage. The older number, the share of frequencies at ``threshold`` × the bank's own
peak, is :func:`peak_relative_coverage`: a new filter can raise the peak and shrink it.

The FFTs' memory, by the rule of :mod:`spatialmix_cli.data.budget` (every tensor alive at the same moment,
from shapes alone): per chunk of c filters at pad P, c x P^2 x 24 bytes (the float32 zero-padded input, the
complex64 FFT, its float32 magnitude...), plus P^2 x 24 bytes for the envelope and its statistics; the
chunk shrinks from 64 filters to what fits, down to one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ...config.limits import DEFAULT_LEVEL, DEFAULT_PAD, DEFAULT_THRESHOLD
from ...data.budget import check_fits, host_budget
from ...errors import ConfigError

_CHUNK = 64  # filters per FFT batch at most: bounds memory at (chunk, P, P) complex values
MAX_PAD = 8192  # an 8192² FFT already resolves 1/8192 cycles/sample; beyond it is a typo
# Relative slack of the coverage level: a delta's float32 |FFT| is 1 only to ~1e-7 (0.99999994 at some
# frequencies), and a flat spectrum at level 1 must count as covered everywhere, not at a random half.
ROUNDING = 1e-5
FFT_BYTES_PER_FILTER_PIXEL = 24  # zero-padded float32 input, complex64 FFT, float32 |FFT|, max (~20)
ENVELOPE_BYTES_PER_PIXEL = 24  # envelope, unit-energy envelope, their fftshifts, float64 radius / energy


def fft_bytes(chunk: int, pad: int) -> int:
    """One FFT chunk of ``chunk`` filters at ``pad`` x ``pad`` and the envelope statistics."""
    return pad * pad * (chunk * FFT_BYTES_PER_FILTER_PIXEL + ENVELOPE_BYTES_PER_PIXEL)


def check_pad(pad: int, kernel: int) -> int:
    """``pad`` if it can hold a ``kernel``-tap filter and is in [8, MAX_PAD]; a ConfigError otherwise."""
    if pad < 8 or pad < kernel or pad > MAX_PAD:
        raise ConfigError(f"pad must be >= 8, >= the kernel size ({kernel}) and <= {MAX_PAD}, got {pad}")
    return pad


def fft_chunk(n: int, pad: int) -> int:
    """Filters per FFT batch for ``n`` filters at ``pad``: up to 64, fewer where 64 would not fit in the
    memory budget (the envelope is the same: a max over filters), and a ResourceError where even one does
    not. The estimate is :func:`fft_bytes`."""
    budget = host_budget()
    chunk = min(n, _CHUNK)
    if budget is not None:
        per_filter = pad * pad * FFT_BYTES_PER_FILTER_PIXEL
        chunk = max(1, min(chunk, (budget.nbytes - fft_bytes(0, pad)) // per_filter))
    check_fits(
        fft_bytes(chunk, pad),
        f"the spectrum at pad {pad}",
        rule=f"FFTs of {chunk} filter(s) at a time: {chunk} x {pad}^2 x {FFT_BYTES_PER_FILTER_PIXEL} bytes, "
        f"+ {pad}^2 x {ENVELOPE_BYTES_PER_PIXEL} bytes for the envelope",
        fix="lower --pad",
        budget=budget,
    )
    return chunk


def check_threshold(threshold: float) -> float:
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    return threshold


def check_level(level: float) -> float:
    """``level`` if it is a finite number > 0 (a multiple of the flat spectrum's |H| = 1); a ConfigError
    otherwise. Above sqrt(k·k) no unit-energy k×k filter reaches it, and the coverage is 0."""
    if not 0 < level < math.inf:
        raise ConfigError(f"level must be a finite number > 0, got {level}")
    return level


def as_filters(bank: torch.Tensor) -> torch.Tensor:
    """A bank of shape (n, 1, kh, kw), (n, kh, kw) or (kh, kw) as float (n, kh, kw)."""
    if bank.dim() == 4 and bank.shape[1] == 1:
        bank = bank[:, 0]
    elif bank.dim() == 2:
        bank = bank.unsqueeze(0)
    if bank.dim() != 3 or bank.shape[0] < 1:
        raise ConfigError(f"a filter bank must be (n, 1, k, k) or (n, k, k), got shape {tuple(bank.shape)}")
    return bank.detach().to("cpu", torch.float32)


def frequencies(pad: int) -> torch.Tensor:
    """Frequency (cycles/sample) of each index along an axis after ``fftshift``: (i - P//2) / P."""
    return (torch.arange(pad, dtype=torch.float64) - pad // 2) / pad


def envelopes(bank: torch.Tensor, pad: int = DEFAULT_PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """The bank's envelope and its unit-energy envelope, from one FFT per filter: (P, P) each, zero
    frequency centred. The second is the max over filters of |FFT2(h / ‖h‖₂)|; a filter with no energy
    (all zero, or every tap below float32's normal range, 1.2e-38, so that 1 / ‖h‖₂ overflows) has no
    direction to scale and is left out of it."""
    filters = as_filters(bank)
    check_pad(pad, max(filters.shape[-2:]))
    chunk_size = fft_chunk(filters.shape[0], pad)
    env, unit = torch.zeros(pad, pad), torch.zeros(pad, pad)
    for chunk in filters.split(chunk_size):
        mag = torch.fft.fft2(chunk, s=(pad, pad)).abs()
        env = torch.maximum(env, mag.amax(dim=0))
        scale = chunk.double().square().sum(dim=(-2, -1)).rsqrt().float()  # inf: no energy
        scale = torch.where(scale.isfinite(), scale, torch.zeros_like(scale))  # ... and left out
        unit = torch.maximum(unit, mag.mul_(scale[:, None, None]).amax(dim=0))
    return torch.fft.fftshift(env), torch.fft.fftshift(unit)


def spectral_envelope(bank: torch.Tensor, pad: int = DEFAULT_PAD) -> torch.Tensor:
    """Max over filters of |FFT2| of each filter zero-padded to pad×pad, zero frequency centred: (P, P)."""
    return envelopes(bank, pad)[0]


def unit_energy_envelope(bank: torch.Tensor, pad: int = DEFAULT_PAD) -> torch.Tensor:
    """Max over filters of |FFT2| of each filter scaled to unit energy (‖h‖₂ = 1), zero-padded to pad×pad,
    zero frequency centred: (P, P); 1 is the level of a flat spectrum. Filters with no energy are left out."""
    return envelopes(bank, pad)[1]


def coverage(unit_env: torch.Tensor, level: float = DEFAULT_LEVEL) -> float:
    """Fraction of frequencies where a unit-energy envelope (:func:`unit_energy_envelope`) is at least
    ``level`` (1 = a flat spectrum of the same energy), up to float32 rounding (:data:`ROUNDING`). A fixed
    level: adding a filter never lowers it."""
    check_level(level)
    return float((unit_env >= level * (1 - ROUNDING)).double().mean())


def peak_relative_coverage(env: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Fraction of frequencies where the envelope is at least ``threshold`` × its own maximum (what
    ``coverage`` meant before: a filter that raises the peak can lower it)."""
    check_threshold(threshold)
    peak = env.max()
    if peak <= 0:
        return 0.0
    return float((env >= threshold * peak).double().mean())


def high_freq_share(env: torch.Tensor) -> float:
    """Share of sum(env²) at radius > 0.25 cycles/sample (half the Nyquist radius)."""
    fy, fx = frequencies(env.shape[-2]), frequencies(env.shape[-1])
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    energy = env.double() ** 2
    total = energy.sum()
    return float(energy[radius > 0.25].sum() / total) if total > 0 else 0.0


@dataclass(frozen=True)
class BankSpectrum:
    """Coverage (at a fixed level), peak-relative coverage and high-frequency share of one bank; ``envelope``
    (the unit-energy envelope, the one a figure shows) is kept out of :meth:`to_dict`. ``n`` counts every
    filter, those with no energy too."""

    n: int
    kernel: int
    coverage: float
    peak_relative_coverage: float
    high_freq_share: float
    envelope: torch.Tensor = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "kernel": self.kernel,
            "coverage": self.coverage,
            "peak_relative_coverage": self.peak_relative_coverage,
            "high_freq_share": self.high_freq_share,
        }


def bank_spectrum(
    bank: torch.Tensor,
    pad: int = DEFAULT_PAD,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    level: float = DEFAULT_LEVEL,
) -> BankSpectrum:
    """Unit-energy envelope, coverage at ``level``, coverage at ``threshold`` × peak and high-frequency
    share (of the envelope as drawn, unscaled) of ``bank``."""
    check_threshold(threshold)
    check_level(level)
    filters = as_filters(bank)
    env, unit = envelopes(filters, pad)
    return BankSpectrum(
        n=filters.shape[0],
        kernel=max(filters.shape[-2:]),
        coverage=coverage(unit, level),
        peak_relative_coverage=peak_relative_coverage(env, threshold),
        high_freq_share=high_freq_share(env),
        envelope=unit,
    )
