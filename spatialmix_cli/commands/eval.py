"""What ``spatialmix eval`` runs: the clean test loss and accuracy (or PSNR, for un-shuffle checkpoints) of
checkpoints on their dataset's test set, all of it by default, through :func:`evaluation.evaluate` over
uint8 batches (no attack machinery, no sample cap).

Which images: the first ``n`` of the fixed seed-0 permutation of the test set (``data.take_subset``, the
one a run's ``test_subset`` takes), so ``--n`` equal to a run's ``test_subset`` scores the images its
training evaluated. A synthetic run's test set is the one it drew (its ``subset`` and ``test_subset``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..config.runfiles import CONFIG_FILE
from ..config.train import TrainConfig
from ..data import eval_batches, load_dataset
from ..data.batches import Batch
from ..data.sources import ImageData, take_subset
from ..errors import CheckpointError, ConfigError
from ..store.checkpoint import Checkpoint, checkpoint_file, load_checkpoint
from ..store.rundir import read_config
from ..training.callbacks import EvalCallbacks
from ..training.evaluate import EvalResult, evaluate
from ..training.runtime import resolve_device
from ..training.tasks import make_task
from .info import model_skeleton


def evaluate_checkpoints(
    paths: Sequence[str | Path],
    *,
    n: int | None = None,
    batch_size: int = 500,
    device: str = "auto",
    data_dir: str | None = None,
    callbacks: EvalCallbacks | None = None,
) -> list[EvalResult]:
    """Every checkpoint (a run directory stands for its model.safetensors) checked first from its metadata
    and header, so a bad path fails before any work; then each loaded in turn (one model in memory at a
    time) and evaluated on its test set (``n`` images, all by default)."""
    if n is not None and n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    hooks = callbacks or EvalCallbacks()
    where = resolve_device(device)
    files = [checkpoint_file(p) for p in paths]
    for file in files:
        meta, _ = model_skeleton(file)
        if "dataset" not in meta:
            raise CheckpointError(f"{file} records no dataset; it was not written by `spatialmix train`")
    data, results = EvalData(data_dir), []
    for file in files:
        ckpt = load_checkpoint(file, where)
        hooks.on_checkpoint(ckpt)
        results.append(evaluate_checkpoint(ckpt, n=n, batch_size=batch_size, data=data))
        hooks.on_result(results[-1])
    return results


def evaluate_checkpoint(
    ckpt: Checkpoint, *, n: int | None = None, batch_size: int = 500, data: EvalData | None = None
) -> EvalResult:
    """The clean test metrics of one loaded checkpoint, on the device its model is on (test images from
    ``data``; default: a fresh :class:`EvalData` with the default data folders)."""
    cfg = stored_config(ckpt)
    info = ckpt.info
    device = next(ckpt.model.parameters()).device
    task = make_task(cfg.task, image_size=info.image_size, perm_seed=cfg.perm_seed)
    start = time.perf_counter()
    batches = (data or EvalData()).batches(ckpt, cfg, n, batch_size, device)
    scores = evaluate(ckpt.model, batches, device=device, task=task)
    seconds = time.perf_counter() - start
    if scores["n"] == 0:
        raise ConfigError(f"{ckpt.path}: its test set has no images")
    return EvalResult(
        checkpoint=str(ckpt.path),
        arch=str(ckpt.meta["model"]["name"]),
        learn=ckpt.learn,
        filters=ckpt.filters,
        dataset=info.name,
        task=cfg.task,
        n=int(scores["n"]),
        loss=scores["loss"],
        acc=scores.get("acc"),
        psnr=scores.get("psnr"),
        seconds=round(seconds, 3),
    )


def stored_config(ckpt: Checkpoint) -> TrainConfig:
    """The training config a checkpoint records (the defaults, i.e. classification, when it has none)."""
    saved = ckpt.meta.get("config")
    if saved is None:
        return TrainConfig()
    return TrainConfig.from_dict(saved, f"{ckpt.path} config")


class EvalData:
    """The test images of each dataset, read once however many checkpoints use them (uint8, CPU). The
    user's ``data_dir`` decides where data is read or downloaded; the folders a checkpoint and its run
    name are only looked in, and their ``download: false`` turns a download off, never on."""

    def __init__(self, data_dir: str | None = None) -> None:
        self.data_dir = data_dir
        self._loaded: dict[tuple[Any, ...], ImageData] = {}

    def batches(
        self, ckpt: Checkpoint, cfg: TrainConfig, n: int | None, batch_size: int, device: torch.device
    ) -> Iterator[Batch]:
        """The first ``n`` images of the checkpoint's test set (all with None), on ``device``."""
        info = ckpt.info
        run_cfg = read_config(ckpt.path.parent) if (ckpt.path.parent / CONFIG_FILE).is_file() else None
        hints = tuple(h for h in (cfg.data_dir, run_cfg.data_dir if run_cfg else None) if isinstance(h, str))
        if info.streamed:
            # torchvision (seconds to import) only for folder datasets: a tensor dataset's run skips it
            from ..data.imagefolder import check_classes, find_streamed, folder_eval_batches

            root = find_streamed(info.name, self.data_dir, hints)
            check_classes(root, info.classes)
            yield from folder_eval_batches(
                root,
                image_size=info.image_size,
                batch_size=batch_size,
                device=device,
                subset=n,
                workers=cfg.workers,
            )
            return
        data = self._test_set(info.name, info.image_size, cfg, hints)
        images, labels = take_subset(data.test_x, data.test_y, n)
        for x, y in eval_batches(images, labels, batch_size):
            yield x.to(device), y.to(device)

    def _test_set(self, name: str, image_size: int, cfg: TrainConfig, hints: tuple[str, ...]) -> ImageData:
        # A synthetic run's test set is the one it drew (it depends on subset and test_subset).
        sizes = (cfg.subset, cfg.test_subset) if name == "synthetic" else (None, None)
        key = (name, image_size, sizes, cfg.download, hints)
        if key not in self._loaded:
            data = load_dataset(
                name,
                data_dir=self.data_dir,
                download=cfg.download,
                hints=hints,
                subset=sizes[0],
                test_subset=sizes[1],
            )
            # Only the test split is kept, resized to the size the model was trained at.
            data = replace(data, train_x=data.train_x[:0], train_y=data.train_y[:0]).resized(image_size)
            self._loaded[key] = data
        return self._loaded[key]
