"""ImageNet-style data that does not fit in memory: an ImageFolder (``train/<class>/*``, ``val/<class>/*``)
decoded on DataLoader workers, with RandomResizedCrop + flip for training and resize / centre-crop for
evaluation (torchvision.transforms.v2). Batches come out as uint8, like the tensor sources. ``imagenet``
is found in the data folders; ``folder`` (your own images) is exactly the folder given, and records its
class names and the mean / std of its own images.

The images are listed here, not by torchvision's ImageFolder (whose ``os.walk(followlinks=True)`` follows
a link out of the tree or round a loop): a class folder is walked without following links; a link to a
file or class folder is used only where it resolves inside the data folder; a link to a folder inside a
class folder is refused (a loop, or a second copy of images); so is a pipe or device named like an image.
Fewer than two classes, or a class with no images, is refused. Every listed image's header is opened once
(a small folder's images are decoded whole), so a file that is not an image is named before a run starts;
one that fails to decode later, on a loader worker, reaches the main process as a marked item and is
named there in one line. Bad images are not skipped (no option does): a run trains on exactly the
folder's images, and the message says which file to remove or replace."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from ..errors import DataError
from ..seeding import derive_seed
from .batches import Batch
from .info import DatasetInfo, dataset_info
from .sources import Hints, expected_layout, search_roots

STATS_IMAGES = 512  # training images a folder dataset's mean / std are computed over
MIN_STD = 1 / 255  # a channel with one value everywhere: normalise by a pixel step, not by zero
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
# Before a run: the headers of a split's first CHECK_HEADERS images are opened (~0.1 ms each: 5 s at most);
# a split of at most CHECK_DECODE images is decoded whole (JPEGs at a reduced scale: ~1-5 ms each). An
# image past these bounds that cannot be read is named when a loader reaches it (checked_batches).
CHECK_HEADERS = 50_000
CHECK_DECODE = 1024
MAX_WORKERS = 4  # the loader workers ``workers: null`` (auto) starts, at most one per usable core


def loader_workers(workers: int | None) -> int:
    """DataLoader workers: ``workers`` when set, else min(4, the cores this process may use): the most
    torch's DataLoader does not warn about (on 2 cores, 2)."""
    if workers is not None:
        return workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


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


def _inside(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def _check_link(path: Path, top: Path, *, folder: bool) -> None:
    """A link is used only where it resolves inside ``top`` (the data folder), and never to a folder
    inside a class folder (``folder``): a loop or a second copy of images."""
    if not path.is_symlink():
        return
    real = Path(os.path.realpath(path))
    if real == path or real in path.parents:
        raise DataError(f"{path} is a link that loops back to {real}; remove the link")
    if not _inside(real, top):
        raise DataError(
            f"{path} is a link out of the data folder {top} (to {real}); links are followed only inside "
            "it: copy the images in, or pass the folder the link points into"
        )
    if folder:
        raise DataError(
            f"{path} is a link to a folder inside a class folder; links to folders are not followed "
            "(a loop, or a second copy of images): replace it by the folder, or remove it"
        )


def _check_file(path: Path, top: Path) -> None:
    """An image file: a regular file (a pipe or device would block or never end), or a link into ``top``
    (a dangling one is named as unreadable when the images are checked)."""
    _check_link(path, top, folder=False)
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise DataError(f"{path} is not a regular file (a pipe, socket or device); remove it")


def _walk_error(exc: OSError) -> None:
    raise DataError(f"cannot read {exc.filename}: {exc.strerror or exc}")


def list_classes(split: Path, top: Path | None = None, minimum: int = 2) -> list[str]:
    """The class names: the split's sub-folders, sorted (ImageFolder's order), each a folder or a link
    into ``top`` (default: the split's parent); at least ``minimum``."""
    top = Path(os.path.realpath(top or split.parent))
    try:
        entries = sorted((e for e in os.scandir(split) if e.is_dir()), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot read {split}: {exc.strerror or exc}") from exc
    for entry in entries:
        _check_link(Path(entry.path), top, folder=False)
    classes = [e.name for e in entries]
    if len(classes) < minimum:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DataError(
            f"{split} needs at least two class folders (one sub-folder of images per class), found {found}"
        )
    return classes


def list_images(split: Path, top: Path | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(image path, class index)]) of a split, in ImageFolder's order, walked without
    following links (see the module's docstring)."""
    top = Path(os.path.realpath(top or split.parent))
    classes = list_classes(split, top)
    samples: list[tuple[str, int]] = []
    for index, name in enumerate(classes):
        found = 0
        for folder, dirs, files in sorted(os.walk(split / name, onerror=_walk_error)):
            for sub in dirs:
                _check_link(Path(folder) / sub, top, folder=True)
            for file in sorted(files):
                if file.lower().endswith(IMG_EXTENSIONS):
                    _check_file(Path(folder) / file, top)
                    samples.append((os.path.join(folder, file), index))
                    found += 1
        if not found:
            raise DataError(
                f"{split / name} holds no images ({', '.join(IMG_EXTENSIONS)}); add some or remove the folder"
            )
    return classes, samples


def _load(path: str) -> Image.Image:
    """An image as RGB (torchvision's pil_loader)."""
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def _check(path: str, decode: bool) -> None:
    """Open an image's header, and with ``decode`` decode it all (a JPEG at 1/8 scale: every byte of it is
    still read, so a truncated one fails)."""
    with open(path, "rb") as f, Image.open(f) as image:
        if decode:
            image.draft("RGB", (32, 32))
            image.load()


def _reason(exc: BaseException, path: str) -> str:
    text = str(exc).replace(repr(path), "").replace(path, "it").strip(" :")
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def unreadable(path: str, reason: str | None = None, more: int = 0) -> DataError:
    """The one-line error naming an image that cannot be read (``reason``: found by reading it again)."""
    if reason is None:
        try:
            _load(path)
            reason = "it failed to decode on a loader worker"
        except Exception as exc:  # noqa: BLE001 - whatever the file makes PIL raise is the file's fault
            reason = _reason(exc, path)
    others = f"; {more} more unreadable image(s) in the same split" if more else ""
    return DataError(
        f"{path} is not a readable image ({reason}); remove it or replace it by a good image{others}"
    )


def check_images(samples: list[tuple[str, int]]) -> None:
    """Open each image's header (at most CHECK_HEADERS; a split of at most CHECK_DECODE images is decoded
    whole), and name the first one that fails, with a count of the others."""
    decode = len(samples) <= CHECK_DECODE
    bad: list[tuple[str, str]] = []
    for path, _ in samples[:CHECK_HEADERS]:
        try:
            _check(path, decode)
        except Exception as exc:  # noqa: BLE001 - whatever the file makes PIL raise is the file's fault
            bad.append((path, _reason(exc, path)))
    if bad:
        raise unreadable(bad[0][0], bad[0][1], len(bad) - 1)


class ImageFiles(Dataset):
    """A split's images (:func:`list_images`), decoded as RGB and transformed. An image that fails to
    decode (on a worker) comes back as a blank image with the label ``-1 - index``, which
    :func:`checked_batches` turns into one error naming the file in the main process."""

    def __init__(self, split: Path, transform: Callable[[Any], torch.Tensor], top: Path | None = None):
        self.classes, self.samples = list_images(split, top)
        check_images(self.samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        try:
            image = _load(path)
        except Exception:  # noqa: BLE001 - named in the main process (checked_batches)
            return self.transform(Image.new("RGB", (8, 8))), -1 - index
        return self.transform(image), label


def check_split(root: Path, split: str) -> None:
    """List and check a split's images now (links, classes, unreadable files): the validation images are
    read only after training, and a bad one must be named before a run starts."""
    _folder(root / split, eval_transform(8))


def checked_batches(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], dataset: ImageFiles
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches; a marked item (an image that failed to decode) is one error naming it."""
    for images, labels in batches:
        if labels.numel() and int(labels.min()) < 0:
            raise unreadable(dataset.samples[-1 - int(labels.min())][0])
        yield images, labels


def _folder(path: Path, transform: v2.Transform) -> ImageFiles:
    # Decoding uses PIL (torchvision's pil_loader): torchvision.io's image decoders are deprecated since
    # torchvision 0.29 in favour of TorchCodec (a warning per image, removal announced).
    if not path.is_dir():
        raise DataError(f"cannot read ImageFolder {path}: not a folder")
    return ImageFiles(path, transform)


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
        workers: int | None = None,
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
        self.seed, self.device, self.workers = seed, device, loader_workers(workers)

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
        for images, labels in checked_batches(loader, self.dataset):
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def folder_eval_batches(
    root: Path,
    *,
    image_size: int,
    batch_size: int,
    device: torch.device,
    subset: int | None,
    workers: int | None = None,
) -> Iterator[Batch]:
    dataset = _folder(root / "val", eval_transform(image_size))
    items: torch.utils.data.Dataset = dataset
    if subset is not None and subset < len(dataset):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:subset]
        items = Subset(dataset, order.tolist())
    loader = DataLoader(items, batch_size=batch_size, num_workers=loader_workers(workers))
    for images, labels in checked_batches(loader, dataset):
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def folder_classes(root: Path, split: str = "train", minimum: int = 2) -> list[str]:
    """The class names: the split's sub-folders, sorted (torchvision's ImageFolder order); at least two."""
    return list_classes(root / split, root, minimum)


def check_classes(root: Path, classes: tuple[str, ...] | None) -> None:
    """``val/`` must hold the classes ``train/`` (or a checkpoint) has, or a label would mean another class
    (ImageFolder numbers each split's own sub-folders)."""
    found = folder_classes(root, "val", 0 if classes is not None else 2)
    if classes is not None and list(classes) != found:
        raise DataError(f"{root / 'val'} has classes {found}, but the model was trained on {list(classes)}")


def folder_stats(
    root: Path, image_size: int, *, limit: int = STATS_IMAGES, workers: int | None = 0
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
    loader = DataLoader(Subset(dataset, chosen), batch_size=64, num_workers=loader_workers(workers))
    for images, _ in checked_batches(loader, dataset):
        if images.shape[1] != 3:
            raise DataError(f"{root / 'train'}: expected RGB images, got {images.shape[1]} channels")
        pixels = images.to(torch.float64).div(255).transpose(0, 1).reshape(3, -1)
        total += pixels.sum(1)
        squares += pixels.square().sum(1)
        count += pixels.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(MIN_STD)
    return tuple(mean.tolist()), tuple(std.tolist())


def imagefolder_info(
    root: Path, image_size: int, name: str = "imagenet", workers: int | None = 0
) -> DatasetInfo:
    """``imagenet``: its class count, ImageNet's statistics. ``folder``: also its class names, its name
    and the statistics of its own images."""
    classes = folder_classes(root)
    base = replace(dataset_info(name), image_size=image_size, num_classes=len(classes))
    if name != "folder":
        return base
    check_classes(root, tuple(classes))
    mean, std = folder_stats(root, image_size, workers=workers)
    return replace(base, mean=mean, std=std, classes=tuple(classes), source=root.resolve().name)
