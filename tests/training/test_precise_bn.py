"""Precise BatchNorm (issue 29, item 4): a short run recomputes BatchNorm's running statistics over training
batches before its final test evaluation and save, leaves the weights alone, records it in result.json,
and a short run that keeps stale statistics says so on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spatialmix_cli.config.train import PRECISE_BN_AUTO_STEPS, TrainConfig
from spatialmix_cli.store.checkpoint import load_model
from spatialmix_cli.training.loop import train
from spatialmix_cli.training.precise_bn import IMAGES, PURPOSE, batchnorms, wanted
from spatialmix_cli.training.prepare import prepare_data
from spatialmix_cli.training.runtime import to_float

from conftest import json_lines, tiny_config

TINY = ["--dataset", "synthetic", "--set", "subset=256", "--set", "test_subset=64", "--width", "16",
        "--depth", "2", "--set", "kernel=3", "--set", "patch=4", "--batch-size", "64", "--epochs", "1",
        "--device", "cpu", "--logger", "none"]  # fmt: skip


def _result(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


def _bn_input_means(model: torch.nn.Module, cfg: TrainConfig) -> list[torch.Tensor]:
    """Each BatchNorm's input mean per channel, averaged over the pass's batches with equal weight,
    measured with forward hooks on the final weights in train mode (batch statistics: what a BatchNorm's
    input is does not depend on any running statistics)."""
    data = prepare_data(cfg, torch.device("cpu"))
    norms = batchnorms(model)
    sums = [torch.zeros(m.num_features, dtype=torch.float64) for m in norms]
    batches = 0

    def hook(i: int):
        def record(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            sums[i] += args[0].double().mean(dim=(0, 2, 3))

        return record

    handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(norms)]
    model.train()
    with torch.no_grad():
        for images, labels in data.train.sample(IMAGES, PURPOSE):
            model(data.task.inputs_targets(to_float(images), labels)[0])
            batches += 1
    for h in handles:
        h.remove()
    return [s / batches for s in sums]


def test_the_auto_rule_recomputes_short_runs_only() -> None:
    assert wanted("auto", PRECISE_BN_AUTO_STEPS - 1) and not wanted("auto", PRECISE_BN_AUTO_STEPS)
    assert wanted("always", 10**6) and not wanted("never", 1)
    with pytest.raises(Exception, match="precise_bn"):
        tiny_config(precise_bn="sometimes")


def test_a_short_run_saves_the_statistics_of_its_final_weights(tmp_path: Path) -> None:
    """The saved running mean of every BatchNorm is the mean of its inputs over the pass's training
    batches under the saved weights (not an average over the weights of the last training steps)."""
    cfg = tiny_config(epochs=2)  # 8 steps: auto recomputes
    train(cfg, tmp_path / "run")
    saved = load_model(tmp_path / "run" / "model.safetensors")
    expected = _bn_input_means(load_model(tmp_path / "run" / "model.safetensors"), cfg)
    for norm, mean in zip(batchnorms(saved), expected, strict=True):
        torch.testing.assert_close(norm.running_mean.double(), mean, rtol=1e-4, atol=1e-5)
    # all 256 training images (fewer than IMAGES), in the 4 whole batches of 64
    assert _result(tmp_path / "run")["precise_bn"] == {"ran": True, "images": 256, "batches": 4}


@pytest.mark.slow  # fast sibling: the saved-statistics test
def test_the_pass_changes_buffers_only_and_never_leaves_a_record(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="8 optimizer steps is too short"):
        kept = train(tiny_config(precise_bn="never"), tmp_path / "never")
    redone = train(tiny_config(precise_bn="always"), tmp_path / "always")
    a, b = load_model(kept.checkpoint), load_model(redone.checkpoint)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q), name  # the same training, weights untouched by the pass
    assert any(not torch.equal(x, y) for x, y in zip(a.buffers(), b.buffers(), strict=True))
    assert kept.precise_bn == {"ran": False} and redone.precise_bn["ran"] is True
    assert _result(tmp_path / "never")["precise_bn"] == {"ran": False}
    lines = (tmp_path / "always" / "metrics.jsonl").read_text().splitlines()
    assert [("precise_bn" in json.loads(x)) for x in lines] == [False, True]  # after the last epoch only


@pytest.mark.slow  # fast: the saved-statistics test
def test_eval_of_the_saved_weights_reproduces_the_recomputed_test_accuracy(cli) -> None:
    trained = cli("train", *TINY, "--out", "run", "--json")
    assert trained.exit_code == 0, trained.stderr
    result = json_lines(trained.stdout)[0]
    assert result["precise_bn"]["ran"] is True
    scored = json_lines(cli("eval", "run", "--json").stdout)[0]
    assert scored["acc"] == pytest.approx(result["test_acc"]) and scored["loss"] == pytest.approx(
        result["test_loss"]
    )


@pytest.mark.slow  # fast: the saved-statistics test
def test_a_short_run_says_on_stderr_what_it_did_with_the_statistics(cli) -> None:
    kept = cli("train", *TINY, "--out", "kept", "--set", "precise_bn=never")
    assert kept.exit_code == 0, kept.stderr
    warned = [line for line in kept.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "4 optimizer steps is too short for BatchNorm" in warned[0]
    redone = cli("train", *TINY, "--out", "redone")
    assert redone.exit_code == 0, redone.stderr
    assert "warning: " not in redone.stderr
    assert "recomputed them over 256 training images" in " ".join(redone.stderr.split())


def test_unshuffling_runs_recompute_too(tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict(
        {
            "task": "unshuffle",
            "arch": "convmixer_unshuffle",
            "dataset": "synthetic",
            "width": 8,
            "depth": 1,
            "kernel": 3,
            "subset": 128,
            "test_subset": 32,
            "epochs": 1,
            "batch_size": 64,
            "device": "cpu",
            "learn": "chans",
            "logger": "none",
        }  # fmt: skip
    )
    result = train(cfg, tmp_path / "run")
    assert result.precise_bn == {"ran": True, "images": 128, "batches": 2}
