"""Real MNIST / Fashion-MNIST (skipped when ../shared/datasets is absent): the files load as torchvision
describes them, and a channels-only ConvMixer learns well above chance in a short run."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatialmix_cli.data import load_dataset
from spatialmix_cli.training.loop import train

from conftest import tiny_config

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_datasets_load(real_data: Path, name: str) -> None:
    data = load_dataset(name, data_dir=str(real_data), download=False)
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    counts = data.test_y.bincount().tolist()
    assert len(counts) == 10 and min(counts) >= 892  # the rarest MNIST test class has 892 images


@pytest.mark.slow  # a real training run; the loading above and the synthetic training tests stay fast
def test_channels_only_convmixer_learns_fashion_mnist(real_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(dataset="fashion-mnist", data_dir=str(real_data), width=32, depth=2, kernel=5, patch=2,
                      subset=2000, test_subset=1000, epochs=2, learn="chans")  # fmt: skip
    result = train(cfg, tmp_path / "run")
    assert result.test_acc > 0.5  # chance is 0.1
