"""MixUp / CutMix: soft labels that sum to one, seeded per step (resume stays exact), RNG left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spatialmix_cli.data.mixing import make_mixer
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import load_model
from spatialmix_cli.training.loop import TrainingInterrupted, train
from spatialmix_cli.training.tasks import Classify

from conftest import tiny_config


def test_mixer_gives_soft_labels_and_is_seeded() -> None:
    assert make_mixer(0.0, 0.0, 10) is None
    mix = make_mixer(0.8, 1.0, 10)
    images, labels = torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))
    original = images.clone()
    before = torch.random.get_rng_state()
    a_x, a_y = mix(images, labels, 7)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
    b_x, b_y = mix(images, labels, 7)
    c_x, _ = mix(images, labels, 8)
    assert a_y.shape == (16, 10) and torch.allclose(a_y.sum(1), torch.ones(16))
    assert torch.equal(a_x, b_x) and torch.equal(a_y, b_y) and not torch.equal(a_x, c_x)
    assert torch.equal(images, original)  # the input batch is not written into
    assert any(not torch.equal(mix(images, labels, s)[0], images) for s in range(5))
    score = Classify().score(torch.nn.functional.one_hot(a_y.argmax(1), 10).float(), a_y)
    assert score == 16


@pytest.mark.slow  # ~8 s; fast: the mixer test, imagefolder's mixup run
def test_training_with_mixup_and_cutmix_resumes_exactly(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=2, mixup=0.8, cutmix=1.0)
    straight = train(cfg, tmp_path / "straight")
    calls = {"n": 0}

    def stop_after_5() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5

    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "resumed", should_stop=stop_after_5)
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    a, b = load_model(straight.checkpoint).state_dict(), load_model(resumed.checkpoint).state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    plain = load_model(train(tiny_config(epochs=2), tmp_path / "plain").checkpoint).state_dict()
    assert any(not torch.equal(a[k], plain[k]) for k in a)  # mixing changed the training


def test_augmentation_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="ImageFolder"):
        tiny_config(randaugment=2)
    with pytest.raises(ConfigError, match="mixup must be >= 0"):
        tiny_config(mixup=-1)
    with pytest.raises(ConfigError, match="classify"):
        tiny_config(task="unshuffle", arch="convmixer_unshuffle", patch=None, mixup=0.5)
