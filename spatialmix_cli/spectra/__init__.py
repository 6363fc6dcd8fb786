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
    DEFAULT_LEVEL,
    DEFAULT_PAD,
    DEFAULT_THRESHOLD,
    BankSpectrum,
    bank_spectrum,
    check_level,
    check_pad,
    check_threshold,
    coverage,
    envelopes,
    frequencies,
    high_freq_share,
    peak_relative_coverage,
    spectral_envelope,
    unit_energy_envelope,
)

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_PAD",
    "DEFAULT_THRESHOLD",
    "BankSpectrum",
    "CheckpointSpectra",
    "DrawnSpectrum",
    "LayerSpectrum",
    "bank_spectrum",
    "check_level",
    "check_pad",
    "check_threshold",
    "checkpoint_spectra",
    "coverage",
    "depthwise_weights",
    "draw_bank",
    "drawn_spectrum",
    "envelopes",
    "frequencies",
    "high_freq_share",
    "peak_relative_coverage",
    "spectral_envelope",
    "unit_energy_envelope",
]
