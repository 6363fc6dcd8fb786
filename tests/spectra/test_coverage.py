"""Spectral coverage at a fixed level (issue 29, item 3): a unit-energy envelope compared with a flat
spectrum's |H| = 1, so adding a filter never lowers it; it still separates N = 64 from N = 256 at k = 5; the
old number (share of the bank's own peak) lives on as ``peak_relative_coverage``; both checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spatialmix_cli.analysis.spectra import (
    DEFAULT_LEVEL,
    DEFAULT_THRESHOLD,
    bank_spectrum,
    coverage,
    draw_bank,
    drawn_spectrum,
    peak_relative_coverage,
    spectral_envelope,
    unit_energy_envelope,
)

PAD = 32  # the coverage is a share of frequencies: a coarse grid estimates the same area fraction

SEEDED = settings(derandomize=True, max_examples=40, deadline=None)


def _random_bank(seed: int, n: int, kernel: int) -> torch.Tensor:
    return torch.randn(n, 1, kernel, kernel, generator=torch.Generator().manual_seed(seed))


@SEEDED
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 24),
    kernel=st.integers(1, 7),
    scale=st.floats(1e-3, 1e3),
    level=st.sampled_from([0.5, 1.0, 1.5, DEFAULT_LEVEL, 3.0]),
)
@pytest.mark.slow  # hypothesis draws; fast: the other coverage tests
def test_adding_a_filter_never_lowers_the_coverage(
    seed: int, n: int, kernel: int, scale: float, level: float
) -> None:
    """Per draw: a bank and the same bank with one more filter (of any scale, as a trained filter may be)."""
    bank = _random_bank(seed, n + 1, kernel)
    bigger = torch.cat([bank[:n], scale * bank[n:]])
    before = bank_spectrum(bank[:n], PAD, level=level).coverage
    assert bank_spectrum(bigger, PAD, level=level).coverage >= before
    assert bank_spectrum(bigger, PAD).coverage >= bank_spectrum(bank[:n], PAD).coverage  # the defaults too


@SEEDED
@given(seed=st.integers(0, 10_000), spec=st.sampled_from(["random", "smooth:1", "same"]))
@pytest.mark.slow  # hypothesis draws; fast: the other coverage tests
def test_nested_banks_cover_more_as_they_grow(seed: int, spec: str) -> None:
    """The nested draw of spectra.banks (one bank, its first 1, 2, ..., 64 filters): coverage grows with N
    by construction — with the old peak-relative number it did not."""
    bank = draw_bank(spec, 64, 5, seed=seed)
    covered = [bank_spectrum(bank[:n], PAD).coverage for n in (1, 2, 4, 8, 16, 24, 32, 48, 64)]
    assert covered == sorted(covered), covered


def test_the_old_number_dropped_on_a_nested_bank() -> None:
    """Why the definition changed: a bank's own peak rises with a new filter, and its share shrinks."""
    bank = torch.zeros(2, 1, 5, 5)
    bank[0, 0, 2, 2], bank[1] = (
        1.0,
        1.0,
    )  # a delta (flat: all of it at its own peak), then a 5×5 box (DC gain 25)
    before, after = bank_spectrum(bank[:1], PAD), bank_spectrum(bank, PAD)
    assert before.peak_relative_coverage == 1.0 and after.peak_relative_coverage < 0.1
    assert after.coverage > before.coverage == 0.0  # the box reaches |H| = 5 × flat near DC


def test_coverage_separates_64_from_256_filters_at_kernel_5() -> None:
    """Mean over 4 draws: N = 64 is not saturated, N = 256 covers clearly more (at the default level)."""
    c64, c256 = (drawn_spectrum("random", n, 5, draws=4, pad=PAD).coverage for n in (64, 256))
    assert c64 < 0.8 and c256 - c64 > 0.2, (c64, c256)


@pytest.mark.parametrize("tap", [1.0, 3.7, -0.013])
def test_a_delta_is_the_flat_level(tap: float) -> None:
    """A unit-energy delta has |H| = 1 at every frequency: covered at any level up to 1, nowhere above."""
    delta = torch.zeros(1, 1, 5, 5)
    delta[0, 0, 1, 3] = tap  # off centre: only the phase moves
    env = unit_energy_envelope(delta, PAD)
    assert torch.allclose(env, torch.ones_like(env), atol=1e-6)
    assert [coverage(env, level) for level in (0.25, 0.5, 1.0)] == [1.0, 1.0, 1.0]
    assert [coverage(env, level) for level in (1.01, DEFAULT_LEVEL, 5.0)] == [0.0, 0.0, 0.0]
    assert bank_spectrum(delta, PAD, level=1.0).coverage == 1.0 and bank_spectrum(delta, PAD).coverage == 0.0


def test_a_filter_with_no_energy_is_left_out_and_still_counted() -> None:
    bank = _random_bank(3, 4, 5)
    with_zero = torch.cat([bank, torch.zeros(1, 1, 5, 5)])
    a, b = bank_spectrum(bank, PAD), bank_spectrum(with_zero, PAD)
    assert torch.equal(a.envelope, b.envelope) and a.coverage == b.coverage and b.n == 5
    nothing = bank_spectrum(torch.zeros(3, 1, 5, 5), PAD, level=0.5)
    assert nothing.coverage == 0.0 and nothing.peak_relative_coverage == 0.0 and nothing.n == 3
    assert not nothing.envelope.isnan().any() and nothing.envelope.max() == 0


def _numpy_envelope(bank: torch.Tensor, pad: int, unit: bool) -> np.ndarray:
    """Independently: np.fft.fft2 of each filter zero-padded to pad×pad (scaled to unit energy if ``unit``)."""
    filters = bank[:, 0].double().numpy()
    if unit:
        filters = filters / np.sqrt((filters**2).sum(axis=(1, 2), keepdims=True))
    padded = np.zeros((len(filters), pad, pad))
    padded[:, : filters.shape[1], : filters.shape[2]] = filters
    return np.fft.fftshift(np.abs(np.fft.fft2(padded)).max(axis=0))


def test_both_coverages_match_numpy() -> None:
    bank = _random_bank(7, 16, 5)
    result = bank_spectrum(bank, 64)
    unit, raw = _numpy_envelope(bank, 64, unit=True), _numpy_envelope(bank, 64, unit=False)
    assert np.allclose(result.envelope.numpy(), unit, atol=1e-5)
    assert np.allclose(spectral_envelope(bank, 64).numpy(), raw, atol=1e-5)
    assert result.coverage == pytest.approx((unit >= DEFAULT_LEVEL).mean(), abs=2 / 64**2)  # a boundary bin
    assert 0.05 < result.coverage < 0.5  # 16 filters at k = 5: neither empty nor saturated
    old = (raw >= DEFAULT_THRESHOLD * raw.max()).mean()
    assert result.peak_relative_coverage == pytest.approx(old, abs=2 / 64**2)


def test_the_old_number_keeps_its_computation_under_its_new_name() -> None:
    """peak_relative_coverage is what coverage was: share at ≥ threshold × the raw envelope's peak."""
    bank = draw_bank("random", 16, 5, seed=2)
    env = spectral_envelope(bank, PAD)
    old = float((env >= DEFAULT_THRESHOLD * env.max()).double().mean())
    assert peak_relative_coverage(env) == old == bank_spectrum(bank, PAD).peak_relative_coverage
    assert peak_relative_coverage(env, 0.25) == float((env >= 0.25 * env.max()).double().mean())
    drawn = drawn_spectrum("random", 16, 5, seed=2, pad=PAD)
    assert drawn.to_dict()["peak_relative_coverage"] == old and drawn.to_dict()["coverage"] == drawn.coverage
