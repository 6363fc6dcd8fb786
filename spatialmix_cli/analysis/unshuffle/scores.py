"""Test PSNR of an un-shuffle checkpoint, next to two baselines on the same images: the scrambled input
itself, and the per-pixel mean of the training images (what a model that ignores its input would do).
A model is only doing something when it beats both."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ...config.runfiles import UNSHUFFLE_FILE
from ...config.train import TrainConfig
from ...data import eval_batches, load_dataset
from ...data.permutation import make_permutation, scramble
from ...errors import ConfigError
from ...safefiles import atomic_write_text
from ...store.checkpoint import Checkpoint
from ...training.psnr import PSNR_CONVENTION, psnr_from_mse


@dataclass
class UnshuffleScores:
    checkpoint: str
    dataset: str
    learn: str
    filters: str
    width: int
    depth: int
    kernel: int
    perm_seed: int
    seed: int
    n: int  # test images
    psnr: float  # dB, the model's reconstruction
    psnr_scrambled: float  # dB, the scrambled input compared with the image
    psnr_mean: float  # dB, the per-pixel training mean compared with the image
    psnr_convention: str = PSNR_CONVENTION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Examples:
    """The first test images, scrambled, and the model's reconstruction, all (k, C, H, W) in [0, 1]."""

    truth: torch.Tensor
    scrambled: torch.Tensor
    restored: torch.Tensor


def checkpoint_config(ckpt: Checkpoint) -> TrainConfig:
    """The training config stored in an un-shuffle checkpoint (an error for any other checkpoint)."""
    cfg = TrainConfig.from_dict(ckpt.meta.get("config", {}), f"{ckpt.path} config")
    if cfg.task != "unshuffle":
        raise ConfigError(
            f"{ckpt.path} is a '{cfg.task}' checkpoint, not an un-shuffle one; "
            "train one with `spatialmix unshuffle`"
        )
    return cfg


@torch.no_grad()
def score_checkpoint(
    ckpt: Checkpoint,
    *,
    data_dir: str | None = None,
    download: bool = True,
    batch_size: int = 500,
    examples: int = 8,
) -> tuple[UnshuffleScores, Examples]:
    """PSNR of the model and of both baselines on the checkpoint's test images (its ``test_subset``), and a
    few examples for a picture. The training mean uses the run's own training images (its ``subset``).

    ``data_dir`` and ``download`` are the caller's: the data_dir stored in the checkpoint is only a folder
    to look in (never created or downloaded into), and its ``download: false`` turns downloads off."""
    cfg = checkpoint_config(ckpt)
    data = load_dataset(
        cfg.dataset,
        data_dir=data_dir,
        subset=cfg.subset,
        test_subset=cfg.test_subset,
        download=download and cfg.download,
        hints=[cfg.data_dir],
    ).resized(cfg.image_size)
    size = data.info.image_size
    perm = make_permutation(size, size, cfg.perm_seed)
    model = ckpt.model.eval()
    device = next(model.parameters()).device
    mean_image = data.train_x.double().mean(0).div(255.0)
    sums = {"model": 0.0, "scrambled": 0.0, "mean": 0.0}
    pixels = 0
    shown: Examples | None = None
    for images, _ in eval_batches(data.test_x, data.test_y, batch_size):
        x = images.to(device).float().div(255.0)
        scrambled = scramble(x, perm)
        restored = model(scrambled).float().clamp(0, 1)  # scored as an image (PSNR_CONVENTION)
        sums["model"] += float(((restored.double() - x.double()) ** 2).sum())
        sums["scrambled"] += float(((scrambled.double() - x.double()) ** 2).sum())
        sums["mean"] += float(((mean_image.to(device) - x.double()) ** 2).sum())
        pixels += x.numel()
        if shown is None:
            k = min(examples, x.shape[0])
            shown = Examples(x[:k].cpu(), scrambled[:k].cpu(), restored[:k].cpu())
    if pixels == 0 or shown is None:
        raise ConfigError(f"{ckpt.path}: no test images to evaluate on")
    kwargs = ckpt.meta["model"]["kwargs"]
    scores = UnshuffleScores(
        checkpoint=str(ckpt.path),
        dataset=cfg.dataset,
        learn=cfg.learn,
        filters=cfg.filters,
        width=int(kwargs.get("width", 128)),
        depth=int(kwargs.get("depth", 8)),
        kernel=int(kwargs.get("kernel", 7)),
        perm_seed=cfg.perm_seed,
        seed=cfg.seed,
        n=int(data.test_x.shape[0]),
        psnr=psnr_from_mse(sums["model"] / pixels),
        psnr_scrambled=psnr_from_mse(sums["scrambled"] / pixels),
        psnr_mean=psnr_from_mse(sums["mean"] / pixels),
    )
    return scores, shown


def save_scores(run_dir: Path, scores: UnshuffleScores) -> Path:
    path = run_dir / UNSHUFFLE_FILE
    atomic_write_text(path, json.dumps(scores.to_dict(), indent=2) + "\n")
    return path
