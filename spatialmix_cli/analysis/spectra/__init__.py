"""Spectral envelopes and coverage of depthwise filter banks (Cazenavette et al. 2025, Fig. 1, 8, 9).

Plotting lives in :mod:`spatialmix_cli.analysis.spectra.plot`, which imports matplotlib; this package
does not.
"""

from ...config.limits import DEFAULT_LEVEL, DEFAULT_THRESHOLD
from .banks import (
    CheckpointSpectra,
    DrawnSpectrum,
    checkpoint_spectra,
    depthwise_weights,
    draw_bank,
    drawn_spectrum,
)
from .envelope import (
    bank_spectrum,
    check_level,
    check_pad,
    check_threshold,
    coverage,
    high_freq_share,
    peak_relative_coverage,
    spectral_envelope,
    unit_energy_envelope,
)

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_THRESHOLD",
    "CheckpointSpectra",
    "DrawnSpectrum",
    "bank_spectrum",
    "check_level",
    "check_pad",
    "check_threshold",
    "checkpoint_spectra",
    "coverage",
    "depthwise_weights",
    "draw_bank",
    "drawn_spectrum",
    "high_freq_share",
    "peak_relative_coverage",
    "spectral_envelope",
    "unit_energy_envelope",
]
