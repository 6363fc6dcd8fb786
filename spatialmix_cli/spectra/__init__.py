"""Spectral envelopes and coverage of depthwise filter banks (Cazenavette et al. 2025, Fig. 1, 8, 9).

Plotting lives in :mod:`spatialmix_cli.spectra.plot` (it imports matplotlib lazily).
"""

from .banks import (
    CheckpointSpectra,
    DrawnSpectrum,
    LayerSpectrum,
    checkpoint_spectra,
    depthwise_weights,
    draw_bank,
    drawn_spectrum,
)
from .envelope import (
    DEFAULT_PAD,
    DEFAULT_THRESHOLD,
    BankSpectrum,
    bank_spectrum,
    check_pad,
    check_threshold,
    coverage,
    frequencies,
    high_freq_share,
    spectral_envelope,
)

__all__ = [
    "DEFAULT_PAD",
    "DEFAULT_THRESHOLD",
    "BankSpectrum",
    "CheckpointSpectra",
    "DrawnSpectrum",
    "LayerSpectrum",
    "bank_spectrum",
    "check_pad",
    "check_threshold",
    "checkpoint_spectra",
    "coverage",
    "depthwise_weights",
    "draw_bank",
    "drawn_spectrum",
    "frequencies",
    "high_freq_share",
    "spectral_envelope",
]
