"""What ``spatialmix eval`` runs: the clean test loss and accuracy (or PSNR, for un-shuffle checkpoints) of
checkpoints on their dataset's test set, all of it by default, through :func:`evaluation.evaluate` over
uint8 batches (no attack machinery, no sample cap).

Which images: the first ``n`` of the fixed seed-0 permutation of the test set (``data.take_subset``, the
one a run's ``test_subset`` takes), so ``--n`` equal to a run's ``test_subset`` scores the images its
training evaluated. A synthetic run's test set is the one it drew (its ``subset`` and ``test_subset``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import Checkpoint, checkpoint_file, load_checkpoint
from .config import TrainConfig
from .data import eval_batches, load_dataset
from .data.batches import Batch
from .data.sources import take_subset
from .errors import ConfigError
from .evaluation import evaluate
from .rundir import CONFIG_FILE, read_config
from .runtime import resolve_device
from .tasks import make_task


@dataclass
class EvalResult:
    """One JSON line: a checkpoint's clean test metrics. ``acc`` (a fraction) for classification,
    ``psnr`` (dB) for un-shuffling; the other is None."""

    checkpoint: str
    arch: str
    learn: str
    filters: str
    dataset: str
    task: str
    n: int
    loss: float
    acc: float | None
    psnr: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The record without the metric the task does not have."""
        record = asdict(self)
        record.pop("psnr" if self.task == "classify" else "acc")
        return record


class EvalCallbacks:
    """Hooks of :func:`evaluate_checkpoints` (the CLI prints through these). All are no-ops."""

    def on_checkpoint(self, ckpt: Checkpoint) -> None:
        """``ckpt`` is evaluated next."""

    def on_result(self, result: EvalResult) -> None:
        """``result`` is ready."""


def evaluate_checkpoints(
    paths: Sequence[str | Path],
    *,
    n: int | None = None,
    batch_size: int = 500,
    device: str = "auto",
    data_dir: str | None = None,
    callbacks: EvalCallbacks | None = None,
) -> list[EvalResult]:
    """Every checkpoint (a run directory stands for its model.safetensors) loaded first, so a bad path
    fails before any work; then each evaluated on its test set (``n`` images, all by default)."""
    if n is not None and n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    hooks = callbacks or EvalCallbacks()
    where = resolve_device(device)
    ckpts = [load_checkpoint(checkpoint_file(p), where) for p in paths]
    results = []
    for ckpt in ckpts:
        hooks.on_checkpoint(ckpt)
        results.append(evaluate_checkpoint(ckpt, n=n, batch_size=batch_size, data_dir=data_dir))
        hooks.on_result(results[-1])
    return results


def evaluate_checkpoint(
    ckpt: Checkpoint, *, n: int | None = None, batch_size: int = 500, data_dir: str | None = None
) -> EvalResult:
    """The clean test metrics of one loaded checkpoint, on the device its model is on."""
    cfg = stored_config(ckpt)
    info = ckpt.info
    device = next(ckpt.model.parameters()).device
    task = make_task(cfg.task, image_size=info.image_size, perm_seed=cfg.perm_seed)
    start = time.perf_counter()
    scores = evaluate(ckpt.model, eval_images(ckpt, cfg, n, batch_size, data_dir, device), device=device,
                      task=task)  # fmt: skip
    seconds = time.perf_counter() - start
    if scores["n"] == 0:
        raise ConfigError(f"{ckpt.path}: its test set has no images")
    return EvalResult(
        checkpoint=str(ckpt.path), arch=str(ckpt.meta["model"]["name"]), learn=ckpt.learn,
        filters=ckpt.filters, dataset=info.name, task=cfg.task, n=int(scores["n"]), loss=scores["loss"],
        acc=scores.get("acc"), psnr=scores.get("psnr"), seconds=round(seconds, 3),
    )  # fmt: skip


def stored_config(ckpt: Checkpoint) -> TrainConfig:
    """The training config a checkpoint records (the defaults, i.e. classification, when it has none)."""
    saved = ckpt.meta.get("config")
    if saved is None:
        return TrainConfig()
    return TrainConfig.from_stored(saved, f"{ckpt.path} config", model=False)


def eval_images(
    ckpt: Checkpoint, cfg: TrainConfig, n: int | None, batch_size: int, data_dir: str | None,
    device: torch.device,
) -> Iterator[Batch]:  # fmt: skip
    """The checkpoint's test images, uint8 on ``device``, in batches. The user's ``data_dir`` decides
    where data is read or downloaded; the folders the checkpoint and its run name are only looked in,
    and their ``download: false`` turns a download off, never on."""
    info = ckpt.info
    run_cfg = read_config(ckpt.path.parent) if (ckpt.path.parent / CONFIG_FILE).is_file() else None
    hints = [h for h in (cfg.data_dir, run_cfg.data_dir if run_cfg else None) if isinstance(h, str)]
    if info.name == "imagenet":
        from .data.imagefolder import find_imagefolder, folder_eval_batches

        root = find_imagefolder(data_dir, hints)
        yield from folder_eval_batches(root, image_size=info.image_size, batch_size=batch_size,
                                       device=device, subset=n, workers=cfg.workers)  # fmt: skip
        return
    synthetic = info.name == "synthetic"
    data = load_dataset(info.name, data_dir=data_dir, download=cfg.download, hints=hints,
                        subset=cfg.subset if synthetic else None,
                        test_subset=cfg.test_subset if synthetic else None)  # fmt: skip
    images, labels = take_subset(data.test_x, data.test_y, n)
    # Only the test images are resized (to the size the model was trained at): the training split is dropped.
    data = replace(data, train_x=data.train_x[:0], train_y=data.train_y[:0], test_x=images, test_y=labels)
    data = data.resized(info.image_size)
    for x, y in eval_batches(data.test_x, data.test_y, batch_size):
        yield x.to(device), y.to(device)
