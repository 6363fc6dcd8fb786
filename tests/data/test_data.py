"""Data: idx reading in torchvision's layout, subsets, missing-data errors, batched augmentation, and
exactly reproducible batches."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from spatialmix_cli.data import TensorBatches, augment, load_dataset, random_crop
from spatialmix_cli.errors import DataError


def write_idx(path: Path, array: torch.Tensor) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.to(torch.uint8).numpy().tobytes())


def fake_mnist(root: Path, folder: str = "FashionMNIST", n: int = 40) -> None:
    g = torch.Generator().manual_seed(0)
    for split, count in (("train", n), ("t10k", n // 2)):
        write_idx(
            root / folder / "raw" / f"{split}-images-idx3-ubyte.gz",
            torch.randint(0, 256, (count, 28, 28), generator=g),
        )
        write_idx(root / folder / "raw" / f"{split}-labels-idx1-ubyte.gz", torch.arange(count) % 10)


def test_reads_idx_files_in_torchvision_layout(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    data = load_dataset("fashion-mnist", data_dir=str(tmp_path), download=False)
    assert data.train_x.shape == (40, 1, 28, 28) and data.train_x.dtype == torch.uint8
    assert data.test_x.shape == (20, 1, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(40)]


def test_subset_is_a_fixed_choice(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    a = load_dataset("fashion-mnist", data_dir=str(tmp_path), subset=10, test_subset=5, download=False)
    b = load_dataset("fashion-mnist", data_dir=str(tmp_path), subset=10, download=False)
    assert a.train_x.shape[0] == 10 and a.test_x.shape[0] == 5
    assert torch.equal(a.train_x, b.train_x)


def test_env_var_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mnist(tmp_path, folder="MNIST")
    monkeypatch.setenv("SPATIALMIX_DATA", str(tmp_path))
    assert load_dataset("mnist", download=False).train_x.shape[0] == 40


def test_missing_data_offline_names_data_dir_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", data_dir=str(tmp_path / "nothing"), download=False)
    message = str(err.value)
    assert "--data-dir" in message and "FashionMNIST/raw/train-images-idx3-ubyte.gz" in message


def test_truncated_idx_is_a_clear_error(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    path = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot read"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path), download=False)


def test_random_crop_is_a_per_sample_shifted_window() -> None:
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    crops = [random_crop(images, 2, g) for _ in range(20)]
    assert all(c.shape == images.shape and c.dtype == torch.uint8 for c in crops)
    assert any(not torch.equal(c, images) for c in crops)
    # every crop is the image shifted by at most 2 pixels, with zeros where it left the frame
    for crop in crops:
        for b in range(2):
            nonzero = crop[b][crop[b] > 0]
            assert set(nonzero.tolist()) <= set(images[b].flatten().tolist())
    assert torch.equal(random_crop(images, 0, g), images)


def test_augmentation_differs_per_sample_and_is_seeded() -> None:
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    a = augment(images, crop_pad=0, hflip=True, generator=torch.Generator().manual_seed(1))
    b = augment(images, crop_pad=0, hflip=True, generator=torch.Generator().manual_seed(1))
    flipped = [torch.equal(a[i], images[i].flip(2)) for i in range(64)]
    assert torch.equal(a, b) and 10 < sum(flipped) < 54


def test_batches_are_reproducible_at_any_start_step() -> None:
    images = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(50)
    source = TensorBatches(images, labels, batch_size=16, seed=3, crop_pad=1, hflip=True)
    assert source.steps_per_epoch == 3  # the incomplete last batch is dropped
    full = list(source.epoch(1))
    resumed = list(source.epoch(1, start_step=2))
    assert (
        len(resumed) == 1
        and torch.equal(resumed[0][0], full[2][0])
        and torch.equal(resumed[0][1], full[2][1])
    )
    other_epoch = list(source.epoch(2))
    assert not torch.equal(full[0][1], other_epoch[0][1])
    seen = torch.cat([y for _, y in full])
    assert len(set(seen.tolist())) == 48  # no image twice in an epoch


def test_synthetic_is_deterministic_and_cifar_shaped() -> None:
    a, b = (
        load_dataset("synthetic", subset=32, test_subset=8),
        load_dataset("synthetic", subset=32, test_subset=8),
    )
    assert a.train_x.shape == (32, 3, 32, 32) and torch.equal(a.train_x, b.train_x)
