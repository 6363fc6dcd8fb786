"""Shared fixtures: tiny configs on synthetic data, the CLI runner, and real data when present."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from spatialmix_cli.cli.app import app
from spatialmix_cli.config.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets"

torch.set_num_threads(min(2, torch.get_num_threads()))
# Tests never download: timm / huggingface_hub fail fast instead of reaching for pretrained weights.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# Recipes validate every point (a meta forward each): paper-scale ones take tens of seconds per file on 2 cores,
# the timm twin builds timm models, each CPU twin takes seconds. demo.yaml and one CPU twin (fig7-cpu: a training
# base and an attack section) go through the same checks in the fast run; every recipe file under slow. Declared
# here, not in test_config_recipes.py only to keep this change to marks (that file is restructured elsewhere).
SLOW_ON_RECIPE_FILES = {
    "test_every_recipe_file_is_valid",
    "test_every_paper_recipe_runs_each_compared_cell_with_three_paired_seeds",
    "test_cpu_twins_use_real_small_data",
}
FAST_RECIPE_FILES = {"demo", "fig7-cpu"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the parametrisations of SLOW_ON_RECIPE_FILES slow but those of FAST_RECIPE_FILES."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        path = callspec.params.get("path") if callspec else None
        if getattr(item, "originalname", "") in SLOW_ON_RECIPE_FILES and isinstance(path, Path):
            if path.stem not in FAST_RECIPE_FILES:
                item.add_marker(pytest.mark.slow)


def tiny_config(**overrides: Any) -> TrainConfig:
    """A ConvMixer-16/2 on 256 synthetic images: one epoch is a few steps and well under a second. It logs
    no TensorBoard events (``logger: none``): tests about logging ask for a logger."""
    base = dict(
        arch="convmixer", width=16, depth=2, kernel=3, patch=4, dataset="synthetic", subset=256,
        test_subset=64, epochs=2, batch_size=64, lr=0.01, device="cpu", log_every=1, logger="none",
    )  # fmt: skip
    return TrainConfig.from_dict({**base, **overrides})


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke the CLI in ``tmp_path``; returns the click Result (``.stdout``/``.stderr`` separate)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def real_data() -> Path:
    if not (SHARED_DATA / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real datasets not found under {SHARED_DATA}")
    return SHARED_DATA


def make_folder(root: Path, classes: int = 3, per_class: int = 8) -> None:
    """An ImageFolder tree (train/ and val/, one folder per class) of small random JPEGs."""
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", per_class), ("val", per_class // 2)):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = (torch.rand(40, 48, 3, generator=g) * 80 + 60 * c).clamp(0, 255).to(torch.uint8)
                Image.fromarray(pixels.numpy()).save(folder / f"{i}.jpg")


def disk_snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (dotfiles too) with a hash of its content and its mtime: equal
    snapshots before and after a refused command mean it changed nothing on disk."""
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mtime_ns}"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def sigterm_guard():
    """Were SIGTERM not caught by the command, it would end the test run; here it fails the test instead."""

    def caught_by_the_test(signum, frame):  # noqa: ANN001
        raise RuntimeError("SIGTERM was not handled by the command")

    before = signal.signal(signal.SIGTERM, caught_by_the_test)
    yield
    signal.signal(signal.SIGTERM, before)
