"""ImageNet-style data that does not fit in memory: an ImageFolder (``train/<class>/*``, ``val/<class>/*``)
decoded on DataLoader workers, with RandomResizedCrop + flip for training and resize / centre-crop for
evaluation (torchvision.transforms.v2). Batches come out as uint8, like the tensor sources. ``imagenet``
is found in the data folders; ``folder`` (your own images) is exactly the folder given, and records its
class names and the mean / std of its own images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets
from torchvision.transforms import v2

from ..errors import DataError
from ..seeding import derive_seed
from .batches import Batch
from .info import DatasetInfo, dataset_info
from .sources import Hints, expected_layout, search_roots

STATS_IMAGES = 512  # training images a folder dataset's mean / std are computed over
MIN_STD = 1 / 255  # a channel with one value everywhere: normalise by a pixel step, not by zero


def find_imagefolder(data_dir: str | None, hints: Hints = ()) -> Path:
    roots, _ = search_roots(data_dir, hints)
    for root in roots:
        if (root / "train").is_dir() and (root / "val").is_dir():
            return root
        if (root / "imagenet" / "train").is_dir():
            return root / "imagenet"
    where = ", ".join(str(r) for r in roots)
    raise DataError(
        f"imagenet not found (looked in {where}; it is never downloaded). Pass --data-dir DIR laid out as "
        f"{expected_layout('imagenet')}"
    )


def find_folder(data_dir: str | None, hints: Hints = ()) -> Path:
    """A ``folder`` dataset's root: ``data_dir`` when given, else the first of ``hints`` (the folder a
    checkpoint or its run recorded) laid out as ``train/<class>/*`` and ``val/<class>/*``."""
    roots = [Path(data_dir).expanduser()] if data_dir else [Path(h).expanduser() for h in hints if h]
    for root in roots:
        if (root / "train").is_dir() and (root / "val").is_dir():
            return root
    if not roots:
        raise DataError(
            "dataset 'folder' needs --data-dir DIR (a folder with train/<class>/* and val/<class>/*)"
        )
    where = ", ".join(str(r) for r in roots)
    raise DataError(
        f"dataset 'folder': {where} is not an ImageFolder; it needs train/<class>/* and val/<class>/* "
        "(one sub-folder of images per class in each)"
    )


def find_streamed(name: str, data_dir: str | None, hints: Hints = ()) -> Path:
    """The root of a streamed dataset (``imagenet`` or ``folder``)."""
    return find_folder(data_dir, hints) if name == "folder" else find_imagefolder(data_dir, hints)


def _folder(path: Path, transform: v2.Transform) -> datasets.ImageFolder:
    # Decoding uses ImageFolder's PIL loader: torchvision.io's image decoders are deprecated since
    # torchvision 0.29 in favour of TorchCodec (a warning per image, removal announced).
    try:
        return datasets.ImageFolder(str(path), transform=transform)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"cannot read ImageFolder {path}: {exc}") from exc


def train_transform(size: int, hflip: bool, randaugment: int = 0, magnitude: int = 9) -> v2.Transform:
    steps: list[v2.Transform] = [v2.PILToTensor(), v2.RandomResizedCrop(size, antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if randaugment:
        steps.append(v2.RandAugment(num_ops=randaugment, magnitude=magnitude))
    return v2.Compose(steps)


def eval_transform(size: int) -> v2.Transform:
    return v2.Compose(
        [v2.PILToTensor(), v2.Resize(int(round(size / 0.875)), antialias=True), v2.CenterCrop(size)]
    )


class FolderBatches:
    """Training batches from an ImageFolder; the sampler order and the workers' random streams are seeded
    by ``(seed, epoch)``, and a resumed epoch skips the batches already done."""

    def __init__(
        self,
        root: Path,
        *,
        image_size: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        hflip: bool = True,
        subset: int | None = None,
        workers: int = 4,
        shard: tuple[int, int] = (0, 1),
        randaugment: int = 0,
        randaugment_magnitude: int = 9,
    ) -> None:
        self.rank, self.world = shard
        transform = train_transform(image_size, hflip, randaugment, randaugment_magnitude)
        self.dataset = _folder(root / "train", transform)
        self.indices = list(range(len(self.dataset)))
        if subset is not None:
            order = torch.randperm(len(self.indices), generator=torch.Generator().manual_seed(0))
            self.indices = order[:subset].tolist()
        self.num_examples = len(self.indices)
        if self.num_examples == 0:
            raise DataError(f"no images under {root / 'train'}")
        self.batch_size = min(batch_size, self.num_examples)
        self.steps_per_epoch = self.num_examples // self.batch_size
        self.seed, self.device, self.workers = seed, device, workers

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
        order = torch.randperm(self.num_examples, generator=generator).tolist()
        return self._batches([self.indices[i] for i in order[start_step * self.batch_size :]], generator)

    def sample(self, images: int, purpose: str) -> Iterator[Batch]:
        """Whole training batches of at most ``images`` images (at least one batch), made as ``epoch``
        makes them, in an order and with worker seeds from a stream of their own, ``(seed, purpose)``."""
        steps = max(1, min(self.steps_per_epoch, images // self.batch_size))
        generator = torch.Generator().manual_seed(derive_seed(self.seed, purpose))
        order = torch.randperm(self.num_examples, generator=generator)[: steps * self.batch_size].tolist()
        return self._batches([self.indices[i] for i in order], generator)

    def _batches(self, chosen: list[int], generator: torch.Generator) -> Iterator[Batch]:
        if self.world > 1:  # this rank decodes only its share of every global batch
            full = len(chosen) // self.batch_size * self.batch_size
            chosen = [c for i, c in enumerate(chosen[:full]) if i % self.batch_size % self.world == self.rank]
        loader = DataLoader(
            Subset(self.dataset, chosen),
            batch_size=self.batch_size // self.world,
            drop_last=True,
            num_workers=self.workers,
            generator=generator,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        for images, labels in loader:
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def folder_eval_batches(
    root: Path, *, image_size: int, batch_size: int, device: torch.device, subset: int | None, workers: int
) -> Iterator[Batch]:
    dataset = _folder(root / "val", eval_transform(image_size))
    items: torch.utils.data.Dataset = dataset
    if subset is not None and subset < len(dataset):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:subset]
        items = Subset(dataset, order.tolist())
    loader = DataLoader(items, batch_size=batch_size, num_workers=workers)
    for images, labels in loader:
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def folder_classes(root: Path, split: str = "train") -> list[str]:
    """The class names: the split's sub-folders, sorted (torchvision's ImageFolder order)."""
    try:
        classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
    except OSError as exc:
        raise DataError(f"cannot read {root / split}: {exc}") from exc
    if not classes:
        raise DataError(f"no class folders under {root / split}")
    return classes


def check_classes(root: Path, classes: tuple[str, ...] | None) -> None:
    """``val/`` must hold the classes ``train/`` (or a checkpoint) has, or a label would mean another class
    (ImageFolder numbers each split's own sub-folders)."""
    found = folder_classes(root, "val")
    if classes is not None and list(classes) != found:
        raise DataError(f"{root / 'val'} has classes {found}, but the model was trained on {list(classes)}")


def folder_stats(
    root: Path, image_size: int, *, limit: int = STATS_IMAGES, workers: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (0-1 pixels) of at most ``limit`` training images, chosen by a fixed seed
    and resized to ``image_size`` x ``image_size``: the same numbers on every run."""
    resize = v2.Compose([v2.PILToTensor(), v2.Resize((image_size, image_size), antialias=True)])
    dataset = _folder(root / "train", resize)
    chosen = list(range(len(dataset)))
    if len(chosen) > limit:
        chosen = sorted(
            torch.randperm(len(chosen), generator=torch.Generator().manual_seed(0))[:limit].tolist()
        )
    if not chosen:
        raise DataError(f"no images under {root / 'train'}")
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for images, _ in DataLoader(Subset(dataset, chosen), batch_size=64, num_workers=workers):
        if images.shape[1] != 3:
            raise DataError(f"{root / 'train'}: expected RGB images, got {images.shape[1]} channels")
        pixels = images.to(torch.float64).div(255).transpose(0, 1).reshape(3, -1)
        total += pixels.sum(1)
        squares += pixels.square().sum(1)
        count += pixels.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(MIN_STD)
    return tuple(mean.tolist()), tuple(std.tolist())


def imagefolder_info(root: Path, image_size: int, name: str = "imagenet", workers: int = 0) -> DatasetInfo:
    """``imagenet``: its class count, ImageNet's statistics. ``folder``: also its class names, its name
    and the statistics of its own images."""
    classes = folder_classes(root)
    base = replace(dataset_info(name), image_size=image_size, num_classes=len(classes))
    if name != "folder":
        return base
    check_classes(root, tuple(classes))
    mean, std = folder_stats(root, image_size, workers=workers)
    return replace(base, mean=mean, std=std, classes=tuple(classes), source=root.resolve().name)
