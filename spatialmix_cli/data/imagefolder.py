"""ImageNet-style data that does not fit in memory: an ImageFolder (``train/<class>/*``, ``val/<class>/*``)
decoded on DataLoader workers, with RandomResizedCrop + flip for training and resize / centre-crop for
evaluation (torchvision.transforms.v2). Batches come out as uint8, like the tensor sources."""

from __future__ import annotations

from collections.abc import Iterator
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
        chosen = [self.indices[i] for i in order[start_step * self.batch_size :]]
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


def imagefolder_info(root: Path, image_size: int) -> DatasetInfo:
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"no class folders under {root / 'train'}")
    base = dataset_info("imagenet")
    return DatasetInfo(
        base.name, base.in_chans, image_size, len(classes), base.mean, base.std, base.crop_pad, base.hflip
    )
