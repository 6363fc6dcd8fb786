"""Spectral envelope of a bank of 2-D filters, its coverage and its high-frequency share.

Cazenavette et al. 2025, Fig. 1, 8 and 9: the envelope is the largest |DFT| over a bank's filters at every
frequency; a bank *covers* the frequencies where some filter passes at least ``threshold`` of the peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from ..limits import DEFAULT_PAD, DEFAULT_THRESHOLD  # noqa: F401  (re-exported: torch-free for the CLI)
from ..memory import ENVELOPE_BYTES_PER_PIXEL, FFT_BYTES_PER_FILTER_PIXEL, check_fits, fft_bytes, host_budget

_CHUNK = 64  # filters per FFT batch at most: bounds memory at (chunk, P, P) complex values
MAX_PAD = 8192  # an 8192² FFT already resolves 1/8192 cycles/sample; beyond it is a typo


def check_pad(pad: int, kernel: int) -> int:
    """``pad`` if it can hold a ``kernel``-tap filter and is in [8, MAX_PAD]; a ConfigError otherwise."""
    if pad < 8 or pad < kernel or pad > MAX_PAD:
        raise ConfigError(f"pad must be >= 8, >= the kernel size ({kernel}) and <= {MAX_PAD}, got {pad}")
    return pad


def fft_chunk(n: int, pad: int) -> int:
    """Filters per FFT batch for ``n`` filters at ``pad``: up to 64, fewer where 64 would not fit in the
    memory budget (the envelope is the same: a max over filters), and a ResourceError where even one does
    not. The estimate is :func:`~spatialmix_cli.memory.fft_bytes`."""
    budget = host_budget()
    chunk = min(n, _CHUNK)
    if budget is not None:
        per_filter = pad * pad * FFT_BYTES_PER_FILTER_PIXEL
        chunk = max(1, min(chunk, (budget.nbytes - fft_bytes(0, pad)) // per_filter))
    check_fits(fft_bytes(chunk, pad), f"the spectrum at pad {pad}",
               rule=f"FFTs of {chunk} filter(s) at a time: {chunk} x {pad}^2 x {FFT_BYTES_PER_FILTER_PIXEL} bytes, "
               f"+ {pad}^2 x {ENVELOPE_BYTES_PER_PIXEL} bytes for the envelope", fix="lower --pad",
               budget=budget)  # fmt: skip
    return chunk


def check_threshold(threshold: float) -> float:
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    return threshold


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


def spectral_envelope(bank: torch.Tensor, pad: int = DEFAULT_PAD) -> torch.Tensor:
    """Max over filters of |FFT2| of each filter zero-padded to pad×pad, zero frequency centred: (P, P)."""
    filters = as_filters(bank)
    check_pad(pad, max(filters.shape[-2:]))
    chunk_size = fft_chunk(filters.shape[0], pad)
    env = torch.zeros(pad, pad)
    for chunk in filters.split(chunk_size):
        mag = torch.fft.fft2(chunk, s=(pad, pad)).abs().amax(dim=0)
        env = torch.maximum(env, mag)
    return torch.fft.fftshift(env)


def coverage(env: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Fraction of frequencies where the envelope is at least ``threshold`` × its maximum."""
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
    """Coverage and high-frequency share of one bank; ``envelope`` is kept out of :meth:`to_dict`."""

    n: int
    kernel: int
    coverage: float
    high_freq_share: float
    envelope: torch.Tensor = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "kernel": self.kernel, "coverage": self.coverage,
                "high_freq_share": self.high_freq_share}  # fmt: skip


def bank_spectrum(
    bank: torch.Tensor, pad: int = DEFAULT_PAD, threshold: float = DEFAULT_THRESHOLD
) -> BankSpectrum:
    """Envelope, coverage and high-frequency share of ``bank``."""
    check_threshold(threshold)
    filters = as_filters(bank)
    env = spectral_envelope(filters, pad)
    return BankSpectrum(
        n=filters.shape[0],
        kernel=max(filters.shape[-2:]),
        coverage=coverage(env, threshold),
        high_freq_share=high_freq_share(env),
        envelope=env,
    )
