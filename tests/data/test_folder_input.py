"""Your own image folders as input (issue #31, class 4): a file that is not a readable image, a link out of
the folder or round a loop, and fewer than two classes are each refused before a run starts, in one line
naming the file or folder (exit 2, empty stdout, no run folder); the loader worker default fits the cores."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.data import imagefolder
from spatialmix_cli.errors import DataError

from conftest import make_folder

TINY = ["--arch", "convmixer", "--width", "8", "--depth", "1", "--set", "patch=2", "--set", "kernel=3",
        "--image-size", "8", "--epochs", "1", "--device", "cpu", "--logger", "none", "--set", "workers=0",
        "--set", "batch_size=4"]  # fmt: skip


def train_folder(cli, data: Path, out: Path):
    return cli("train", "--dataset", "folder", "--data-dir", data, *TINY, "--out", out)


def refused(res, out: Path, *words: str) -> str:
    """Exit 2, exactly one ``error:`` line on stderr holding ``words``, nothing on stdout, no run folder."""
    assert res.exit_code == 2, (res.exit_code, res.stderr)
    assert res.stdout == "" and not out.exists()
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    make_folder(tmp_path / "d", classes=2, per_class=4)
    return tmp_path / "d"


def test_a_small_folder_trains(cli, data: Path, tmp_path: Path) -> None:
    res = train_folder(cli, data, tmp_path / "run")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_a_corrupt_image_is_named_in_one_line(cli, data: Path, tmp_path: Path, damage: str) -> None:
    bad = data / "train" / "class_1" / "x.jpg"
    good = (data / "train" / "class_1" / "0.jpg").read_bytes()
    bad.write_bytes({"garbage": b"not a jpeg\n" * 20, "empty": b"", "truncated": good[:200]}[damage])
    line = refused(
        train_folder(cli, data, tmp_path / "run"), tmp_path / "run", str(bad), "not a readable image"
    )
    assert "remove it" in line


def test_a_corrupt_validation_image_is_found_before_the_run(cli, data: Path, tmp_path: Path) -> None:
    bad = data / "val" / "class_0" / "1.jpg"
    bad.write_bytes(bad.read_bytes()[:150])
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", str(bad))


def test_several_corrupt_images_name_the_first_and_count_the_others(data: Path) -> None:
    for name in ("a.jpg", "b.png", "c.jpg"):
        (data / "train" / "class_0" / name).write_bytes(b"x")
    with pytest.raises(DataError, match=r"class_0/a\.jpg is not a readable image.*; 2 more unreadable"):
        imagefolder.FolderBatches(data, image_size=8, batch_size=4, seed=0, device=torch.device("cpu"),
                                  workers=0)  # fmt: skip


def test_an_image_that_fails_on_a_loader_worker_is_one_error_naming_it(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A split too large to decode up front (here: the bound lowered to 0) is header-checked only; a
    truncated JPEG passes that and fails on a worker: the main process names it, in one line."""
    monkeypatch.setattr(imagefolder, "CHECK_DECODE", 0)
    bad = data / "train" / "class_0" / "2.jpg"
    bad.write_bytes(bad.read_bytes()[:-200])
    source = imagefolder.FolderBatches(data, image_size=8, batch_size=8, seed=0, device=torch.device("cpu"),
                                       workers=1)  # fmt: skip
    with pytest.raises(DataError) as caught:
        list(source.epoch(0))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{bad} is not a readable image (")


def test_a_link_loop_inside_a_class_folder_is_refused(cli, data: Path, tmp_path: Path) -> None:
    loop = data / "train" / "class_0" / "again"
    loop.symlink_to("..")
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", str(loop), "loops back")


def test_a_link_to_a_folder_inside_a_class_folder_is_not_followed(cli, data: Path, tmp_path: Path) -> None:
    (data / "train" / "class_0" / "more").symlink_to(data / "val" / "class_0")
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", "links to folders are not followed")


@pytest.mark.parametrize("what", ["image", "class"])
def test_a_link_out_of_the_data_folder_is_refused(cli, data: Path, tmp_path: Path, what: str) -> None:
    outside = tmp_path / "outside"
    make_folder(outside, classes=3, per_class=2)
    if what == "image":
        link = data / "train" / "class_0" / "borrowed.jpg"
        link.symlink_to(outside / "train" / "class_2" / "0.jpg")
    else:
        link = data / "train" / "class_2"
        link.symlink_to(outside / "train" / "class_2")
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", str(link), "out of the data folder")


def test_a_pipe_named_like_an_image_is_refused_not_opened(cli, data: Path, tmp_path: Path) -> None:
    os.mkfifo(data / "train" / "class_0" / "pipe.jpg")  # opening it to read would wait for a writer
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", "pipe.jpg is not a regular file")


def test_links_inside_the_data_folder_are_used(data: Path) -> None:
    (data / "train" / "class_0" / "same.jpg").symlink_to(data / "val" / "class_1" / "0.jpg")
    classes, samples = imagefolder.list_images(data / "train", data)
    assert classes == ["class_0", "class_1"] and len(samples) == 9


@pytest.mark.parametrize("classes", [0, 1])
def test_fewer_than_two_classes_are_refused(cli, tmp_path: Path, classes: int) -> None:
    data = tmp_path / "d"
    make_folder(data, classes=classes, per_class=4)
    for split in ("train", "val"):
        (data / split).mkdir(parents=True, exist_ok=True)
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", str(data / "train"), "at least two")


def test_a_class_folder_with_no_images_is_refused(cli, data: Path, tmp_path: Path) -> None:
    (data / "train" / "class_2").mkdir()
    (data / "train" / "class_2" / "notes.txt").write_text("not an image")
    refused(train_folder(cli, data, tmp_path / "run"), tmp_path / "run", "class_2 holds no images")


def test_the_worker_default_fits_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TrainConfig().workers is None
    # torch's own check (it warns about more workers than usable cores) is quiet on this machine
    loader = DataLoader(range(4), num_workers=imagefolder.loader_workers(TrainConfig().workers))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader.check_worker_number_rationality()
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert imagefolder.loader_workers(None) == 2 and imagefolder.loader_workers(8) == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert imagefolder.loader_workers(None) == 4 and imagefolder.loader_workers(0) == 0


# --- any layout: trains, or one error line ----------------------------------------------------------------

KINDS = ("good", "garbage", "truncated", "notes", "link_in", "link_out", "loop", "pipe")


def _write(folder: Path, i: int, kind: str, outside: Path) -> None:
    pixels = torch.randint(0, 255, (12, 12, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
    image = Image.fromarray(pixels.numpy())
    if kind == "good":
        image.save(folder / f"{i}.jpg")
    elif kind == "garbage":
        (folder / f"{i}.jpg").write_bytes(b"\xff\xd8 nonsense")
    elif kind == "truncated":
        image.save(folder / f"{i}.png")
        (folder / f"{i}.png").write_bytes((folder / f"{i}.png").read_bytes()[:60])
    elif kind == "notes":
        (folder / f"{i}.txt").write_text("a note")
    elif kind == "link_in":
        image.save(folder / f"{i}.png")
        (folder / f"{i}-again.png").symlink_to(f"{i}.png")
    elif kind == "link_out":
        image.save(outside / f"{folder.name}-{i}.png")
        (folder / f"{i}.png").symlink_to(outside / f"{folder.name}-{i}.png")
    elif kind == "pipe":
        os.mkfifo(folder / f"{i}.jpg")
    else:
        (folder / f"loop{i}").symlink_to("..")


layouts = st.tuples(
    st.lists(st.lists(st.sampled_from(KINDS), max_size=3), max_size=3),  # train: classes x files
    st.lists(st.lists(st.sampled_from(KINDS), max_size=3), max_size=3),  # val
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(layout=layouts)
def test_any_folder_layout_trains_or_is_one_error_line(cli, tmp_path_factory, layout) -> None:
    base = tmp_path_factory.mktemp("layout")
    outside = base / "outside"
    outside.mkdir()
    for split, classes in zip(("train", "val"), layout, strict=True):
        for c, kinds in enumerate(classes):
            folder = base / "d" / split / f"c{c}"
            folder.mkdir(parents=True)
            for i, kind in enumerate(kinds):
                _write(folder, i, kind, outside)
    (base / "d" / "train").mkdir(parents=True, exist_ok=True)
    (base / "d" / "val").mkdir(parents=True, exist_ok=True)
    res = train_folder(cli, base / "d", base / "run")
    assert res.exit_code in (0, 2), (res.exit_code, res.stderr)
    if res.exit_code == 2:
        refused(res, base / "run")
