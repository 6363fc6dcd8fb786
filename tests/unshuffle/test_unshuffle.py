"""Un-shuffling: the permutation, PSNR, training through the shared trainer, baselines, grid and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from spatialmix_cli import TrainConfig, create_model, load_checkpoint, train
from spatialmix_cli.analysis.unshuffle import (
    inverse,
    make_permutation,
    psnr,
    psnr_from_mse,
    scramble,
    unscramble,
)
from spatialmix_cli.analysis.unshuffle.scores import score_checkpoint
from spatialmix_cli.errors import ConfigError

from conftest import json_lines, tiny_config


def tiny_unshuffle(**overrides) -> TrainConfig:
    base = dict(task="unshuffle", arch="convmixer_unshuffle", dataset="synthetic", width=16, depth=2, kernel=3,
                subset=512, test_subset=64, epochs=4, batch_size=64, lr=0.03, device="cpu", learn="chans",
                logger="none")  # fmt: skip
    return TrainConfig.from_dict({**base, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unshuffle")
    return {
        learn: Path(train(tiny_unshuffle(learn=learn), root / learn).checkpoint)
        for learn in ("chans", "full")
    }


# --- the permutation ------------------------------------------------------------------------------
def test_permutation_is_a_bijection_and_its_inverse_restores_images_exactly() -> None:
    perm = make_permutation(8, 8, seed=3)
    assert torch.equal(torch.sort(perm).values, torch.arange(64))
    images = torch.rand(5, 3, 8, 8)
    scrambled = scramble(images, perm)
    assert not torch.equal(scrambled, images)
    assert torch.equal(unscramble(scrambled, perm), images)
    assert torch.equal(scramble(scrambled, inverse(perm)), images)
    # every channel is moved by the same σ: a pixel's colour travels as one
    flat_in, flat_out = images.reshape(5, 3, 64), scrambled.reshape(5, 3, 64)
    assert torch.equal(flat_out[:, :, 10], flat_in[:, :, perm[10]])


def test_same_seed_same_permutation_and_other_seed_another() -> None:
    assert torch.equal(make_permutation(28, 28, 0), make_permutation(28, 28, 0))
    assert not torch.equal(make_permutation(28, 28, 0), make_permutation(28, 28, 1))
    state = torch.random.get_rng_state()
    make_permutation(28, 28, 5)
    assert torch.equal(state, torch.random.get_rng_state())  # its own generator: global RNG untouched


# --- PSNR -----------------------------------------------------------------------------------------
def test_psnr_of_identical_images_is_infinite_and_known_noise_matches_the_formula() -> None:
    x = torch.rand(4, 1, 8, 8) * 0.5 + 0.25  # mid-range pixels: the noise below never leaves [0, 1]
    assert psnr(x, x) == math.inf
    assert psnr(x, x + 0.1) == pytest.approx(20.0)  # MSE 0.01 → 10·log10(100)
    noise = torch.randn_like(x) * 0.05
    mse = float((noise.double() ** 2).mean())
    assert psnr(x + noise, x) == pytest.approx(10 * math.log10(1 / mse))
    assert psnr_from_mse(1.0) == 0.0
    with pytest.raises(ValueError):
        psnr_from_mse(-1.0)
    with pytest.raises(ValueError):
        psnr(x, x[:2])


# --- training and scores --------------------------------------------------------------------------
@pytest.mark.slow  # trains the module's two runs (~15 s); fast: the CLI test
def test_training_raises_psnr_above_the_scrambled_baseline(trained: dict[str, Path]) -> None:
    for learn, path in trained.items():
        ckpt = load_checkpoint(path)
        scores, examples = score_checkpoint(ckpt, examples=4)
        assert scores.learn == learn and scores.dataset == "synthetic" and scores.n == 64
        assert scores.psnr > scores.psnr_scrambled + 1.0, scores
        history = ckpt.meta["history"]
        assert history[-1]["test_psnr"] > history[0]["test_psnr"]  # it learned over the epochs
        assert history[-1]["test_psnr"] == pytest.approx(scores.psnr, abs=1e-3)  # same number, two paths
        assert examples.truth.shape == examples.restored.shape == (4, 3, 32, 32)


@pytest.mark.slow  # the trained runs; fast: the CLI test
def test_chans_freezes_spatial_mixing_in_unshuffle_models(trained: dict[str, Path]) -> None:
    ckpt = load_checkpoint(trained["chans"])
    fresh = create_model(**{"name": ckpt.meta["model"]["name"], **ckpt.meta["model"]["kwargs"]})
    assert torch.equal(ckpt.model.blocks[0][0].fn[0].weight, fresh.blocks[0][0].fn[0].weight)
    assert torch.equal(ckpt.model.stem[0].weight, fresh.stem[0].weight)
    assert not torch.equal(ckpt.model.head.weight, fresh.head.weight)  # the pixel head always learns


@pytest.mark.slow  # the trained runs; fast: image_size test
def test_perm_seed_is_in_the_checkpoint_and_scoring_uses_it(trained: dict[str, Path]) -> None:
    ckpt = load_checkpoint(trained["chans"])
    assert ckpt.meta["config"]["perm_seed"] == 0 and ckpt.meta["config"]["task"] == "unshuffle"
    _, shown = score_checkpoint(ckpt, examples=2)
    assert torch.equal(shown.scrambled, scramble(shown.truth, make_permutation(32, 32, 0)))
    ckpt.meta["config"]["perm_seed"] = 1
    _, other = score_checkpoint(ckpt, examples=2)
    assert torch.equal(other.scrambled, scramble(shown.truth, make_permutation(32, 32, 1)))


def test_task_and_arch_must_agree() -> None:
    with pytest.raises(ConfigError, match="needs arch 'convmixer_unshuffle'"):
        TrainConfig.from_dict({"task": "unshuffle", "arch": "convmixer"})
    with pytest.raises(ConfigError, match="set task: unshuffle"):
        TrainConfig.from_dict({"arch": "convmixer_unshuffle"})
    with pytest.raises(ConfigError, match="classify' only"):
        tiny_unshuffle(adv="fgsm")


# --- CLI ------------------------------------------------------------------------------------------
def test_unshuffle_cli_trains_writes_json_scores_and_grid(cli, tmp_path: Path) -> None:
    args = ["unshuffle", "--dataset", "synthetic", "--learn", "chans", "--width", "8", "--depth", "1",
            "--set", "kernel=3", "--epochs", "1", "--set", "subset=128", "--set", "test_subset=32", "--device", "cpu",
            "--logger", "none", "--out", "run", "--json"]  # fmt: skip
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    for key in ("checkpoint", "psnr", "psnr_scrambled", "psnr_mean", "dataset", "learn", "grid"):
        assert key in line
    assert line["dataset"] == "synthetic" and line["learn"] == "chans"
    assert Path(line["grid"]).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "run" / "unshuffle.json").is_file()
    again = cli(*args)  # a finished run is not trained again, and scores come back the same
    assert (
        json_lines(again.stdout)[0]["psnr"] == pytest.approx(line["psnr"])
        and json_lines(again.stdout)[0]["skipped"]
    )


@pytest.mark.slow  # the trained runs; fast: the CLI test
def test_unshuffle_eval_puts_full_and_chans_side_by_side(
    cli, trained: dict[str, Path], tmp_path: Path
) -> None:
    result = cli("unshuffle", "--eval", trained["full"], "--eval", trained["chans"].parent,
                 "--grid", tmp_path / "both.png", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [line["learn"] for line in lines] == ["full", "chans"]
    assert all(line["grid"] == str(tmp_path / "both.png") for line in lines)
    assert (tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG"
    assert "train mean dB" in result.stderr


def test_unshuffle_eval_refuses_a_classifier(cli, tmp_path: Path) -> None:
    ckpt = train(tiny_config(epochs=1, subset=64), tmp_path / "clf").checkpoint
    result = cli("unshuffle", "--eval", ckpt)
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "not an un-shuffle one" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # the trained runs
def test_attack_refuses_an_unshuffle_checkpoint(cli, trained: dict[str, Path]) -> None:
    result = cli("attack", trained["chans"], "--n", "8")
    assert result.exit_code == 2 and "classif" in result.stderr


def test_image_size_resizes_the_data_and_the_permutation(tmp_path: Path) -> None:
    ckpt = load_checkpoint(
        train(tiny_unshuffle(image_size=16, epochs=1, subset=64), tmp_path / "r").checkpoint
    )
    assert ckpt.info.image_size == 16
    scores, shown = score_checkpoint(ckpt, examples=2)
    assert shown.truth.shape == (2, 3, 16, 16)
    assert torch.equal(shown.scrambled, scramble(shown.truth, make_permutation(16, 16, 0)))


@pytest.mark.slow  # the trained runs
def test_unshuffle_eval_takes_data_dir_but_no_training_options(
    cli, trained: dict[str, Path], tmp_path: Path
) -> None:
    ok = cli("unshuffle", "--eval", trained["chans"], "--data-dir", tmp_path, "--grid", tmp_path / "g.png")
    assert ok.exit_code == 0, ok.stderr  # synthetic data needs no files; the option is accepted
    bad = cli("unshuffle", "--eval", trained["chans"], "--width", "8")
    assert bad.exit_code == 2 and "no training options" in bad.stderr


def test_psnr_scores_outputs_clamped_to_the_image_range() -> None:
    """Images live in [0, 1]; an output of 1.4 for a white pixel is a white pixel. The training/eval metric
    (the task's score) and the standalone ``psnr`` both clamp; the loss does not."""
    from spatialmix_cli.training.tasks import make_task

    target = torch.rand(4, 1, 6, 6) * 0.5 + 0.5
    output = target.clone()
    output[target > 0.9] = 1.4  # overshoots that clamping removes entirely
    output[:, :, 0, 0] = target[:, :, 0, 0] - 0.1  # a real error of 0.1 on one pixel per image
    task = make_task("unshuffle", image_size=6)
    mse_clamped = float(((output.clamp(0, 1) - target) ** 2).mean())
    mean_score = float(task.score(output, target)) / target.shape[0]
    assert mean_score == pytest.approx(mse_clamped)
    assert task.summarize(float(task.loss(output, target)), mean_score) == pytest.approx(
        psnr_from_mse(mse_clamped)
    )
    assert psnr(output, target) == pytest.approx(psnr_from_mse(mse_clamped))
    assert float(task.loss(output, target)) > mse_clamped  # the loss still sees the overshoot


@pytest.mark.slow  # the trained runs; fast: the clamping test
def test_psnr_convention_is_recorded(trained: dict[str, Path]) -> None:
    from spatialmix_cli.analysis.unshuffle import PSNR_CONVENTION

    assert "clamped to [0, 1]" in PSNR_CONVENTION and "dataset-level" in PSNR_CONVENTION
    for ckpt in trained.values():
        result = json.loads((ckpt.parent / "result.json").read_text())
        assert result["psnr_convention"] == PSNR_CONVENTION
        scores, _ = score_checkpoint(load_checkpoint(ckpt))
        assert scores.psnr_convention == PSNR_CONVENTION
