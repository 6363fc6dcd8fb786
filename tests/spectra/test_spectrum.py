"""Spectral envelopes of filter banks: the identity is flat, the box has its sinc zeros, coverage grows
with N and is lower for 'same' and smoothed banks; per-layer spectra of a trained checkpoint; the CLI.
The coverage definition itself (fixed level, monotone in the filters) is tested in test_coverage.py."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from spatialmix_cli import create_model, save_checkpoint, train
from spatialmix_cli.analysis.spectra import (
    bank_spectrum,
    checkpoint_spectra,
    coverage,
    depthwise_weights,
    draw_bank,
    drawn_spectrum,
    high_freq_share,
    peak_relative_coverage,
    spectral_envelope,
    unit_energy_envelope,
)
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import load_checkpoint

from conftest import tiny_config

PAD = 64


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ConvMixer-16/2 (two depthwise layers) trained for one epoch on synthetic data."""
    out = tmp_path_factory.mktemp("spectrum") / "run"
    train(tiny_config(epochs=1, subset=128, test_subset=64), out)
    return out


# --- the math ------------------------------------------------------------------------------------------
def test_identity_envelope_is_flat_with_full_coverage() -> None:
    env = spectral_envelope(draw_bank("identity", 4, 5), PAD)
    assert env.shape == (PAD, PAD)
    assert torch.allclose(env, torch.ones_like(env), atol=1e-6)
    assert torch.equal(unit_energy_envelope(draw_bank("identity", 4, 5), PAD), env)  # a delta has unit energy
    assert coverage(env, 1.0) == 1.0 and coverage(env) == 0.0  # flat: at the flat level, not twice above it
    assert peak_relative_coverage(env) == 1.0
    # a flat spectrum's high-frequency share is the area outside radius 1/4 of the unit square: 1 - π/16
    assert high_freq_share(env) == pytest.approx(1 - torch.pi / 16, abs=0.01)


def test_box_filter_has_sinc_zeros_and_partial_coverage() -> None:
    pad = 96  # divisible by 3, so 1/3 cycles/sample is a DFT bin
    result = bank_spectrum(draw_bank("box", 2, 3), pad)
    env, c, third = result.envelope, pad // 2, pad // 2 + pad // 3
    # zero frequency is centred; the box's DC gain is 1, and 3 at unit energy (taps 1/3: 9 × 1/9 = 1)
    assert env[c, c] == pytest.approx(3.0, abs=1e-5)
    assert spectral_envelope(draw_bank("box", 2, 3), pad)[c, c] == pytest.approx(1.0, abs=1e-6)
    assert env[c, third] < 1e-6 and env[third, c] < 1e-6
    assert (
        0 < result.coverage < 1
        and 0 < result.peak_relative_coverage < 1
        and (result.n, result.kernel) == (2, 3)
    )
    assert set(result.to_dict()) == {"n", "kernel", "coverage", "peak_relative_coverage", "high_freq_share"}


def test_both_bank_shapes_give_the_same_envelope() -> None:
    bank = draw_bank("random", 3, 5, seed=1)
    assert torch.equal(spectral_envelope(bank, PAD), spectral_envelope(bank[:, 0], PAD))


def test_mean_coverage_grows_with_n() -> None:
    means = [drawn_spectrum("random", n, 5, draws=8, pad=PAD).coverage for n in (1, 4, 16, 64)]
    assert all(a < b for a, b in zip(means, means[1:], strict=False)), means


def test_same_filters_cover_less_than_independent_ones() -> None:
    same = drawn_spectrum("same", 16, 5, draws=8, seed=3, pad=PAD)
    rand = drawn_spectrum("random", 16, 5, draws=8, seed=3, pad=PAD)
    assert same.coverage < rand.coverage
    assert same.coverage_std is not None and same.draws == 8


def test_smoothing_lowers_the_high_frequency_share() -> None:
    smooth = drawn_spectrum("smooth:1.0", 16, 5, draws=8, pad=PAD)
    rand = drawn_spectrum("random", 16, 5, draws=8, pad=PAD)
    assert smooth.high_freq_share < rand.high_freq_share
    assert smooth.to_dict()["smooth_sigma"] == 1.0 and rand.to_dict()["smooth_sigma"] is None


def test_draws_use_consecutive_seeds_and_multiplier_slices_the_bank() -> None:
    result = drawn_spectrum("random", 4, 3, seed=5, draws=3, pad=PAD)
    per_seed = [bank_spectrum(draw_bank("random", 4, 3, seed=s), PAD).coverage for s in (5, 6, 7)]
    assert result.coverage == pytest.approx(statistics.fmean(per_seed))
    assert torch.equal(result.first.envelope, unit_energy_envelope(draw_bank("random", 4, 3, seed=5), PAD))
    assert draw_bank("same", 5, 3, multiplier=2).shape == (5, 1, 3, 3)  # ceil(5/2) channels, cut to 5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: spectral_envelope(draw_bank("random", 1, 9), 4), "pad must be"),
        (lambda: spectral_envelope(draw_bank("random", 1, 12), 10), "pad must be"),
        (lambda: coverage(torch.ones(8, 8), 0.0), "level"),
        (lambda: coverage(torch.ones(8, 8), float("nan")), "level"),
        (lambda: peak_relative_coverage(torch.ones(8, 8), 0.0), "threshold"),
        (lambda: draw_bank("smoth", 1, 3), "did you mean 'smooth'"),
        (lambda: draw_bank("random", 0, 3), "n >= 1"),
    ],
)
def test_bad_arguments_are_config_errors(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


# --- checkpoints ---------------------------------------------------------------------------------------
def test_checkpoint_spectra_cover_every_depthwise_layer(run_dir: Path) -> None:
    result = checkpoint_spectra(run_dir, pad=PAD)  # a run directory stands for its model.safetensors
    weights = depthwise_weights(load_checkpoint(run_dir / "model.safetensors").model)
    assert len(result.layers) == len(weights) == 2
    assert [x.layer for x in result.layers] == [0, 1]
    assert torch.equal(result.layers[1].spectrum.envelope, unit_energy_envelope(weights[1], PAD))
    assert result.layers[0].spectrum.n == 16 and result.layers[0].spectrum.kernel == 3
    assert (result.arch, result.learn, result.filters) == ("convmixer", "full", "random")


def test_checkpoint_without_depthwise_layers_is_a_config_error(tmp_path: Path) -> None:
    kwargs = {"depth": 8, "width": 4, "in_chans": 1}
    path = tmp_path / "resnet.safetensors"
    save_checkpoint(path, create_model("resnet", **kwargs), {"model": {"name": "resnet", "kwargs": kwargs}})
    with pytest.raises(ConfigError, match="no depthwise"):
        checkpoint_spectra(path, pad=PAD)


# --- the CLI -------------------------------------------------------------------------------------------
def test_cli_random_json_and_png(cli, tmp_path: Path) -> None:
    result = cli(
        "spectrum", "--random", "1,4", "--kernel", "3", "--pad", "64", "--json", "--out", "tmp/fig.png"
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON object
    assert [b["n"] for b in out["banks"]] == [1, 4] and out["pad"] == 64
    assert out["level"] == 2.0 and out["threshold"] == 0.5
    for key in ("kernel", "filters", "smooth_sigma", "multiplier", "seed", "draws", "coverage",
                "coverage_std", "peak_relative_coverage", "peak_relative_coverage_std", "high_freq_share",
                "high_freq_share_std"):  # fmt: skip
        assert key in out["banks"][0], key
    assert Path(out["figure"]).read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "tmp" / "fig.png").is_file() and "coverage" in result.stderr


def test_cli_filter_list_and_no_figure(cli) -> None:
    result = cli("spectrum", "--random", "2", "--kernel", "3", "--filters", "random,smooth", "--draws", "2",
                 "--pad", "32", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert [b["filters"] for b in out["banks"]] == ["random", "smooth"] and out["figure"] is None
    assert out["banks"][0]["coverage_std"] is not None


def test_cli_checkpoint_layers(cli, run_dir: Path, tmp_path: Path) -> None:
    result = cli("spectrum", run_dir, "--pad", "64", "--json", "--out", "layers.png")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert [x["layer"] for x in out["layers"]] == [0, 1] and out["arch"] == "convmixer"
    assert (tmp_path / "layers.png").read_bytes().startswith(b"\x89PNG")
    one = json.loads(
        cli("spectrum", run_dir / "model.safetensors", "--layer", "1", "--pad", "64", "--json").stdout
    )
    assert [x["layer"] for x in one["layers"]] == [1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--random", "4", "--kernel", "3", "RUN"], "exactly one"),
        ([], "exactly one"),
        (["RUN", "--layer", "99", "--pad", "64"], "0..1"),
        (["RUN", "--kernel", "3"], "only used with --random"),
        (["--random", "4", "--kernel", "3", "--filters", "smoth"], "did you mean 'smooth'"),
        (["--random", "4", "--kernel", "9", "--pad", "8"], "pad must be"),
        (["--random", "0", "--kernel", "3"], "N must be >= 1"),
        (["--random", "4"], "needs --kernel"),
        (["--random", "4", "--kernel", "3", "--threshold", "1.5"], "threshold"),
        (["--random", "4", "--kernel", "3", "--level", "0"], "level must be"),
        (["RUN", "--level", "-1"], "level must be"),
    ],
)
def test_cli_errors_are_one_line(cli, run_dir: Path, args: list[str], message: str) -> None:
    result = cli("spectrum", *[str(run_dir) if a == "RUN" else a for a in args])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""


def test_own_banks_are_measured_on_disjoint_filter_subsets() -> None:
    """Claim 9 from a run's frozen bank: the N = 1, 4, 16, 64 sub-banks are consecutive, disjoint blocks
    (independent filters), never nested prefixes whose coverage could only grow."""
    from spatialmix_cli.analysis.spectra import bank_spectrum
    from spatialmix_cli.analysis.spectra.banks import disjoint_subset_coverage

    bank = draw_bank("random", 90, 5, seed=4)
    got = disjoint_subset_coverage(bank, (1, 4, 16, 64), pad=PAD)
    assert set(got) == {1, 4, 16, 64}
    assert got[4] == bank_spectrum(bank[1:5], PAD).coverage
    assert got[64] == bank_spectrum(bank[21:85], PAD).coverage
    assert set(disjoint_subset_coverage(bank[:30], (1, 4, 16, 64), pad=PAD)) == {
        1,
        4,
        16,
    }  # 64 no longer fits
