"""ImageNet-style data: an ImageFolder of JPEGs made in the test trains end to end."""

from __future__ import annotations

from pathlib import Path

import torch

from spatialmix_cli.store.checkpoint import load_checkpoint
from spatialmix_cli.training.loop import train

from conftest import make_folder, tiny_config


def test_imagefolder_trains_and_records_its_classes(tmp_path: Path) -> None:
    make_folder(tmp_path / "data")
    cfg = tiny_config(dataset="imagenet", data_dir=str(tmp_path / "data"), image_size=32, workers=0,
                      batch_size=8, subset=None, test_subset=None, epochs=1)  # fmt: skip
    result = train(cfg, tmp_path / "run")
    assert 0 <= result.test_acc <= 1
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.info.num_classes == 3 and ckpt.model.head.out_features == 3
    assert ckpt.model(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_imagefolder_with_randaugment_mixup_and_cutmix_trains(tmp_path: Path) -> None:
    make_folder(tmp_path / "data")
    cfg = tiny_config(dataset="imagenet", data_dir=str(tmp_path / "data"), image_size=32, workers=0,
                      batch_size=8, subset=None, test_subset=None, epochs=1, randaugment=2, mixup=0.8,
                      cutmix=1.0)  # fmt: skip
    result = train(cfg, tmp_path / "run")
    assert 0 <= result.test_acc <= 1 and result.train_loss == result.train_loss  # finite, not NaN


def test_randaugment_is_part_of_the_imagefolder_train_transform_only_when_asked() -> None:
    from torchvision.transforms import v2

    from spatialmix_cli.data.imagefolder import train_transform

    def kinds(t: v2.Compose) -> list[type]:
        return [type(s) for s in t.transforms]

    assert v2.RandAugment not in kinds(train_transform(32, True))
    assert v2.RandAugment in kinds(train_transform(32, True, randaugment=2, magnitude=9))


def test_distributed_shards_of_an_imagefolder_split_every_global_batch(tmp_path: Path) -> None:
    from collections import Counter

    from spatialmix_cli.data.imagefolder import FolderBatches

    make_folder(tmp_path / "data", classes=4, per_class=6)

    def labels(shard: tuple[int, int]) -> list[list[int]]:
        source = FolderBatches(tmp_path / "data", image_size=16, batch_size=8, seed=1,
                               device=torch.device("cpu"), workers=0, shard=shard)  # fmt: skip
        return [y.tolist() for _, y in source.epoch(0)]

    whole, first, second = labels((0, 1)), labels((0, 2)), labels((1, 2))
    assert len(whole) == len(first) == len(second) == 3
    for w, a, b in zip(whole, first, second, strict=True):
        assert len(a) == len(b) == 4 and Counter(a) + Counter(b) == Counter(w)
