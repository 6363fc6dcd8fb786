"""A training run's data, prepared once: the dataset's facts, the training batches (small datasets held
once on the device as uint8; imagenet and folder as ImageFolder streams), the test batches and the task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..data.batches import Batch, BatchSource, TensorBatches, eval_batches
from ..data.imagefolder import (
    FolderBatches,
    check_split,
    find_streamed,
    folder_eval_batches,
    imagefolder_info,
)
from ..data.info import DatasetInfo, dataset_info
from ..data.sources import load_dataset
from .distributed import Dist
from .tasks import Task, make_task

if TYPE_CHECKING:
    from ..config.train import TrainConfig


@dataclass
class TrainData:
    info: DatasetInfo
    train: BatchSource
    test: Callable[[], Iterator[Batch]]
    task: Task


def prepare_data(cfg: TrainConfig, device: torch.device, dist: Dist | None = None) -> TrainData:
    """Small datasets: loaded once, moved once to the device as uint8. imagenet / folder: ImageFolder streams."""
    info = dataset_info(cfg.dataset)
    task = make_task(cfg.task, image_size=cfg.image_size or info.image_size, perm_seed=cfg.perm_seed)
    # Classification uses the dataset's augmentation by default; un-shuffling none (the target is the image).
    classify = cfg.task == "classify"
    crop_pad = (info.crop_pad if classify else 0) if cfg.crop_pad is None else cfg.crop_pad
    hflip = (info.hflip if classify else False) if cfg.hflip is None else cfg.hflip
    shard = (dist.rank, dist.world) if dist is not None else (0, 1)
    if info.streamed:
        return _imagefolder_data(cfg, device, task, hflip, shard)
    data = load_dataset(
        cfg.dataset,
        data_dir=cfg.data_dir,
        subset=cfg.subset,
        test_subset=cfg.test_subset,
        download=cfg.download,
    )
    data = data.resized(cfg.image_size).to(device)
    source = TensorBatches(
        data.train_x,
        data.train_y,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        crop_pad=crop_pad,
        hflip=hflip,
        shard=shard,
    )
    return TrainData(
        data.info, source, lambda: eval_batches(data.test_x, data.test_y, cfg.eval_batch_size), task
    )


def _imagefolder_data(
    cfg: TrainConfig, device: torch.device, task: Task, hflip: bool, shard: tuple[int, int]
) -> TrainData:
    """ImageNet or your own folder from an ImageFolder tree, decoded and augmented by loader workers."""
    root = find_streamed(cfg.dataset, cfg.data_dir)
    size = cfg.image_size or dataset_info(cfg.dataset).image_size
    source = FolderBatches(
        root,
        image_size=size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=device,
        hflip=hflip,
        subset=cfg.subset,
        workers=cfg.workers,
        shard=shard,
        randaugment=cfg.randaugment,
        randaugment_magnitude=cfg.randaugment_magnitude,
    )
    check_split(root, "val")  # its images are read after training: a bad one is named before the run
    return TrainData(
        imagefolder_info(root, size, cfg.dataset, cfg.workers),
        source,
        lambda: folder_eval_batches(
            root,
            image_size=size,
            batch_size=cfg.eval_batch_size,
            device=device,
            subset=cfg.test_subset,
            workers=cfg.workers,
        ),
        task,
    )
