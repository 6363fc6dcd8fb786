"""Your own images: `dataset: folder` trains on an ImageFolder, records its class names, folder name and
the mean / std of its own images, and its checkpoint evaluates and attacks from the folder it recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialmix_cli.data.info import DatasetInfo, dataset_info
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import load_checkpoint
from spatialmix_cli.training.loop import train

from conftest import json_lines, tiny_config

CLASSES = ["daisy", "rose", "tulip"]  # folder names, made in another order below to test the sorting


def make_folder(root: Path, train_n: int = 8, val_n: int = 4) -> list[np.ndarray]:
    """16x16 PNGs, one distinct colour per image; returns the training images' pixels."""
    pixels = []
    for split, n in (("train", train_n), ("val", val_n)):
        for c, name in enumerate(reversed(CLASSES)):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                colour = (40 + 70 * c + 3 * i, 200 - 50 * c + 5 * i, 17 * i + 30 * c)
                image = np.zeros((16, 16, 3), np.uint8) + np.array(colour, np.uint8)
                image[:, :8, 0] = 255 - colour[0]  # two halves: a spread within each image too
                Image.fromarray(image).save(root / split / name / f"{i}.png")
                if split == "train":
                    pixels.append(image)
    return pixels


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[np.ndarray]]:
    base = tmp_path_factory.mktemp("folder")
    pixels = make_folder(base / "flowers")
    cfg = tiny_config(dataset="folder", data_dir=str(base / "flowers"), image_size=16, workers=0,
                      batch_size=8, subset=None, test_subset=None, epochs=1)  # fmt: skip
    result = train(cfg, base / "run")
    return base, Path(result.checkpoint), pixels


def test_folder_checkpoint_records_classes_source_and_the_data_statistics(folder_run) -> None:
    _, checkpoint, pixels = folder_run
    ckpt = load_checkpoint(checkpoint)
    info = ckpt.info
    assert info.name == "folder" and info.source == "flowers"
    assert info.classes == tuple(CLASSES) and info.num_classes == 3 and ckpt.model.head.out_features == 3
    data = np.stack(pixels).astype(np.float64) / 255  # (n, h, w, c)
    assert info.mean == pytest.approx(data.mean(axis=(0, 1, 2)).tolist(), abs=1e-6)
    assert info.std == pytest.approx(data.std(axis=(0, 1, 2)).tolist(), abs=1e-6)
    assert info.mean != dataset_info("imagenet").mean
    assert ckpt.meta["model"]["kwargs"]["mean"] == pytest.approx(list(info.mean), abs=1e-6)


def test_info_eval_and_attack_run_on_a_folder_checkpoint(cli, folder_run) -> None:
    _, checkpoint, _ = folder_run
    (record,) = json_lines(cli("info", checkpoint, "--json").stdout)
    assert (
        record["dataset"] == "folder" and record["class_names"] == CLASSES and record["source"] == "flowers"
    )
    res = cli("eval", checkpoint, "--json")
    assert res.exit_code == 0, res.stderr
    (row,) = json_lines(res.stdout)
    assert row["n"] == 12 and 0 <= row["acc"] <= 1
    res = cli("attack", checkpoint, "--method", "fgsm", "--eps", "4/255", "--n", "6", "--no-checks", "--json",
              "--no-save")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    (line,) = json_lines(res.stdout)
    assert line["n"] == 6 and 0 <= line["robust_acc"] <= line["clean_acc"] <= 1


def test_eval_refuses_a_folder_whose_classes_differ_from_the_checkpoint(cli, folder_run) -> None:
    base, checkpoint, _ = folder_run
    other = base / "other"
    for split in ("train", "val"):
        (other / split / "cat").mkdir(parents=True)
    res = cli("eval", checkpoint, "--data-dir", other)
    assert res.exit_code == 2 and res.stderr.splitlines()[-1].startswith("error:") and "classes" in res.stderr


@pytest.mark.parametrize(
    ("layout", "message"),
    [(None, "needs --data-dir"), ("missing", "not an ImageFolder"), ("no-val", "not an ImageFolder")],
)
def test_train_without_a_folder_layout_is_one_error_exit_2(cli, tmp_path: Path, layout, message) -> None:
    args = ["train", "--dataset", "folder", "--arch", "convmixer", "--width", "16", "--depth", "2", "--set", "patch=4",
            "--image-size", "16", "--epochs", "1", "--device", "cpu", "--out", tmp_path / "run"]  # fmt: skip
    if layout == "missing":
        args += ["--data-dir", tmp_path / "nowhere"]
    elif layout == "no-val":
        (tmp_path / "d" / "train" / "a").mkdir(parents=True)
        args += ["--data-dir", tmp_path / "d"]
    res = cli(*args)
    assert res.exit_code == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error:") and message in res.stderr


def test_dataset_info_reads_old_records_and_checks_class_names() -> None:
    old = dataset_info("imagenet").to_dict()
    assert "classes" not in old and DatasetInfo.from_dict(old).classes is None
    new = {**old, "name": "folder", "num_classes": 2, "classes": ["a", "b"], "source": "x"}
    assert DatasetInfo.from_dict(new).classes == ("a", "b")
    assert DatasetInfo.from_dict(DatasetInfo.from_dict(new).to_dict()) == DatasetInfo.from_dict(new)
    for bad in (["a"], ["a", "a"], ["a", 2]):
        with pytest.raises(ConfigError, match="classes"):
            DatasetInfo.from_dict({**new, "classes": bad})
    assert dataset_info("folder").streamed and dataset_info("imagenet").streamed
    assert not dataset_info("cifar10").streamed


def test_folder_config_needs_a_data_dir_and_allows_randaugment() -> None:
    with pytest.raises(ConfigError, match="data_dir"):
        tiny_config(dataset="folder", image_size=16)
    assert tiny_config(dataset="folder", data_dir="x", image_size=16, randaugment=2).randaugment == 2


def test_folder_stats_use_a_fixed_sample_of_at_most_limit_images(folder_run) -> None:
    from spatialmix_cli.data.imagefolder import folder_stats

    base, _, pixels = folder_run
    whole = folder_stats(base / "flowers", 16)
    some = folder_stats(base / "flowers", 16, limit=5)
    assert some == folder_stats(base / "flowers", 16, limit=5) and some != whole
    import torch

    # ImageFolder's order: classes sorted, then files; make_folder wrote the classes in reverse order.
    by_class = [pixels[8 * c : 8 * c + 8] for c in range(3)][::-1]
    ordered = [p for images in by_class for p in images]
    chosen = sorted(torch.randperm(len(ordered), generator=torch.Generator().manual_seed(0))[:5].tolist())
    data = np.stack([ordered[i] for i in chosen]).astype(np.float64) / 255
    assert some[0] == pytest.approx(data.mean(axis=(0, 1, 2)).tolist(), abs=1e-6)
    assert some[1] == pytest.approx(data.std(axis=(0, 1, 2)).tolist(), abs=1e-6)


def test_planning_info_counts_a_folders_classes_before_reading_images(folder_run, tmp_path: Path) -> None:
    from spatialmix_cli.data.info import planning_info
    from spatialmix_cli.training.memory import training_estimate

    base, _, _ = folder_run
    assert planning_info("folder", str(base / "flowers")).num_classes == 3
    assert planning_info("folder", str(tmp_path / "nowhere")) == dataset_info("folder")
    assert planning_info("cifar10", str(base / "flowers")) == dataset_info("cifar10")
    cfg = tiny_config(dataset="folder", data_dir=str(base / "flowers"), image_size=16)
    assert training_estimate(cfg).nbytes > 0
