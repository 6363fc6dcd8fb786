"""Static facts about each dataset: shape, classes, normalisation, default augmentation."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..config.names import STREAMED
from ..config.numbers import is_finite_number
from ..errors import ConfigError, check_choice

_MAX_SIZE = 1 << 20  # classes, channels, pixels: anything larger is a damaged or hostile file


_finite_number = is_finite_number


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the trainer need to know about a dataset (and what a checkpoint records)."""

    name: str
    in_chans: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pad: int  # default random-crop padding (0 = no crop)
    hflip: bool  # default random horizontal flip
    # Only a `folder` dataset records these: its class names (train/ sub-folders, sorted) and the folder's
    # name. Older checkpoints have neither key.
    classes: tuple[str, ...] | None = None
    source: str | None = None

    @property
    def streamed(self) -> bool:
        """Read from an ImageFolder on loader workers, not held in memory as tensors."""
        return self.name in STREAMED

    def to_dict(self) -> dict[str, Any]:
        """The fields; ``classes`` and ``source`` only when set (so other datasets' records are unchanged)."""
        data = asdict(self)
        for key in _OPTIONAL:
            if data[key] is None:
                del data[key]
        if self.classes is not None:
            data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "dataset") -> DatasetInfo:
        """Rebuild from :meth:`to_dict` output (e.g. a checkpoint's metadata), checking every field, since
        the dict may come from a file someone else wrote."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in fields]
        missing = [k for k in fields if k not in data and k not in _OPTIONAL]
        if unknown or missing:
            raise ConfigError(f"{where}: unknown fields {unknown}, missing fields {missing}")
        if not isinstance(data["name"], str):
            raise ConfigError(f"{where}.name must be a string, got {data['name']!r}")
        for key in ("in_chans", "image_size", "num_classes", "crop_pad"):
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_SIZE:
                raise ConfigError(f"{where}.{key} must be an integer in [0, {_MAX_SIZE}], got {value!r}")
        if not isinstance(data["hflip"], bool):
            raise ConfigError(f"{where}.hflip must be true/false, got {data['hflip']!r}")
        stats = {}
        for key in ("mean", "std"):
            value = data[key]
            if (
                not isinstance(value, (list, tuple))
                or len(value) != data["in_chans"]
                or not all(_finite_number(v) for v in value)
                or (key == "std" and not all(v > 0 for v in value))
            ):
                raise ConfigError(
                    f"{where}.{key} must be {data['in_chans']} finite numbers"
                    f"{' > 0' if key == 'std' else ''}, got {value!r}"
                )
            stats[key] = tuple(float(v) for v in value)
        return cls(**{**data, **stats, **_checked_names(data, where)})


_OPTIONAL = ("classes", "source")


def _checked_names(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The optional ``classes`` (one distinct string per class) and ``source`` (a string) fields."""
    classes, source = data.get("classes"), data.get("source")
    if classes is not None:
        if (
            not isinstance(classes, (list, tuple))
            or len(classes) != data["num_classes"]
            or not all(isinstance(c, str) for c in classes)
            or len(set(classes)) != len(classes)
        ):
            raise ConfigError(
                f"{where}.classes must be {data['num_classes']} distinct class names, got {classes!r}"
            )
        classes = tuple(classes)
    if source is not None and not isinstance(source, str):
        raise ConfigError(f"{where}.source must be a string, got {source!r}")
    return {"classes": classes, "source": source}


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", 1, 28, 10, (0.1307,), (0.3081,), crop_pad=2, hflip=False),
    "fashion-mnist": DatasetInfo("fashion-mnist", 1, 28, 10, (0.2860,), (0.3530,), crop_pad=2, hflip=True),
    "cifar10": DatasetInfo(
        "cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), crop_pad=4, hflip=True
    ),
    "cifar100": DatasetInfo(
        "cifar100", 3, 32, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), crop_pad=4, hflip=True
    ),
    "imagenet": DatasetInfo("imagenet", 3, 224, 1000, _IMAGENET_MEAN, _IMAGENET_STD, crop_pad=0, hflip=True),
    # Your own ImageFolder (--data-dir DIR with train/ and val/): classes, mean and std are read from the
    # data when a run starts; these are placeholders for checks made before (model shapes, memory).
    "folder": DatasetInfo("folder", 3, 224, 1000, _IMAGENET_MEAN, _IMAGENET_STD, crop_pad=0, hflip=True),
    # Made on the fly by the tests and for trials: CIFAR-shaped, 10 learnable classes.
    "synthetic": DatasetInfo(
        "synthetic", 3, 32, 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), crop_pad=4, hflip=True
    ),
}

# Images in the (train, test) splits of the tensor datasets, for estimates made before loading them
# (synthetic: what make_synthetic draws when no subset is given). ImageNet and folder stream from their folders.
SPLIT_SIZES: dict[str, tuple[int, int]] = {
    "mnist": (60_000, 10_000),
    "fashion-mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
    "synthetic": (1024, 256),
}


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS[check_choice("dataset", name, DATASETS)]


def planning_info(name: str, data_dir: str | None = None) -> DatasetInfo:
    """The facts known before any image is read (for model shapes, parameter counts, memory estimates): a
    ``folder`` dataset's class count is its ``train/`` sub-folders when ``data_dir`` has them (its mean /
    std are only known once its images are read, when a run starts)."""
    info = dataset_info(name)
    if info.name != "folder" or not data_dir:
        return info
    train = Path(data_dir).expanduser() / "train"
    try:
        count = sum(1 for p in train.iterdir() if p.is_dir()) if train.is_dir() else 0
    except OSError:
        count = 0
    return replace(info, num_classes=count) if count else info
