"""Datasets: where they are found, how they are held (uint8 on the device) and how batches are made."""

from .augment import augment, random_crop
from .batches import TensorBatches, eval_batches
from .info import DatasetInfo
from .sources import load_dataset, make_synthetic

__all__ = [
    "DatasetInfo",
    "TensorBatches",
    "augment",
    "eval_batches",
    "load_dataset",
    "make_synthetic",
    "random_crop",
]
