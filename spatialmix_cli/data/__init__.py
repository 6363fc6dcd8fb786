"""Datasets: where they are found, how they are held (uint8 on the device) and how batches are made."""

from .augment import augment, random_crop, random_hflip
from .batches import BatchSource, TensorBatches, eval_batches
from .info import DATASETS, DatasetInfo, dataset_info
from .prepare import TrainData, prepare_data
from .sources import ENV_VAR, ImageData, load_dataset, make_synthetic, search_roots

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "BatchSource",
    "DatasetInfo",
    "ImageData",
    "TensorBatches",
    "TrainData",
    "augment",
    "dataset_info",
    "eval_batches",
    "load_dataset",
    "make_synthetic",
    "prepare_data",
    "random_crop",
    "random_hflip",
    "search_roots",
]
