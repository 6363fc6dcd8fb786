"""ImageNet-style data: an ImageFolder of JPEGs made in the test trains end to end."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from spatialmix_cli.checkpoint import load_checkpoint
from spatialmix_cli.training import train

from conftest import tiny_config


def make_folder(root: Path, classes: int = 3, per_class: int = 8) -> None:
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", per_class), ("val", per_class // 2)):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = (torch.rand(40, 48, 3, generator=g) * 80 + 60 * c).clamp(0, 255).to(torch.uint8)
                Image.fromarray(pixels.numpy()).save(folder / f"{i}.jpg")


def test_imagefolder_trains_and_records_its_classes(tmp_path: Path) -> None:
    make_folder(tmp_path / "data")
    cfg = tiny_config(dataset="imagenet", data_dir=str(tmp_path / "data"), image_size=32, workers=0,
                      batch_size=8, subset=None, test_subset=None, epochs=1)  # fmt: skip
    result = train(cfg, tmp_path / "run")
    assert 0 <= result.test_acc <= 1
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.info.num_classes == 3 and ckpt.model.head.out_features == 3
    assert ckpt.model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
