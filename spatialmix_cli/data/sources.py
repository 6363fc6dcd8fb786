"""Finding and reading datasets into uint8 tensors: MNIST / Fashion-MNIST (idx files), CIFAR-10/100
(torchvision), and synthetic data.

Where data is looked for, in order: ``--data-dir``; ``$SPATIALMIX_DATA``; a ``shared/datasets`` folder
beside the working directory or the checkout (our machines keep read-only copies there); finally a
cache folder (``~/.cache/spatialmix/datasets``) into which torchvision downloads, for users who are online.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import torch

from ..config.limits import MAX_IMAGE_SIZE
from ..errors import ConfigError, DataError
from ..safefiles import open_regular
from .budget import SYNTHETIC_BYTES_PER_PIXEL, check_fits, images_bytes, native_uint8_resize, resize_bytes
from .info import DatasetInfo, dataset_info

ENV_VAR = "SPATIALMIX_DATA"
_IDX_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


@dataclass
class ImageData:
    """A whole small dataset as uint8 image tensors (N, C, H, W) and int64 labels."""

    info: DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: torch.device | str) -> ImageData:
        """Move all four tensors to ``device`` once (they stay uint8 there)."""
        return ImageData(
            self.info,
            self.train_x.to(device),
            self.train_y.to(device),
            self.test_x.to(device),
            self.test_y.to(device),
        )

    def resized(self, size: int | None) -> ImageData:
        """Every image resized to ``size``×``size`` (antialiased bilinear, still uint8), e.g. MNIST at 14
        pixels for CPU-scale un-shuffling; ``None`` or the native size returns ``self``."""
        if size is None or size == self.info.image_size:
            return self
        n = self.train_x.shape[0] + self.test_x.shape[0]
        chans, side = self.info.in_chans, self.info.image_size
        copies = "" if native_uint8_resize() else " + float32 copies of the input and output"
        check_fits(
            resize_bytes(n, chans, side, size),
            f"resizing {n} {self.info.name} images to {size}x{size}",
            rule=f"{n} x {chans} x {size} x {size} bytes as uint8{copies}",
            fix="choose a smaller image_size",
        )
        if not 1 <= size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"image_size must be in [1, {MAX_IMAGE_SIZE}] pixels, got {size}")
        # lazy: torchvision takes ~1 s to import, needed only when image_size asks for a resize
        from torchvision.transforms.v2 import functional as TF

        def resize(x: torch.Tensor) -> torch.Tensor:
            return TF.resize(x, [size, size], antialias=True)

        return ImageData(
            replace(self.info, image_size=size),
            resize(self.train_x),
            self.train_y,
            resize(self.test_x),
            self.test_y,
        )


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spatialmix" / "datasets"


Hints = Sequence[str | os.PathLike[str] | None]


def search_roots(data_dir: str | os.PathLike[str] | None, hints: Hints = ()) -> tuple[list[Path], Path]:
    """(folders to look in, folder to download into). An explicit folder or $SPATIALMIX_DATA is the only
    place looked at and the download target; otherwise shared copies are tried, then the cache, then
    ``hints``: folders named by a file (a checkpoint's or a run's stored ``data_dir``), looked in but never
    created, written or downloaded into — where files go is decided by the user, never by a file."""
    chosen = data_dir or os.environ.get(ENV_VAR)
    if chosen:
        root = Path(chosen).expanduser()
        return [root], root
    shared = [
        Path.cwd().parent / "shared" / "datasets",
        Path(__file__).resolve().parents[3] / "shared" / "datasets",
    ]
    found = [p for p in shared if p.is_dir()] + [default_cache()] + [Path(h) for h in hints if h]
    return [p for i, p in enumerate(found) if p not in found[:i]], default_cache()


def expected_layout(name: str) -> str:
    if name in _IDX_FOLDERS:
        folder = _IDX_FOLDERS[name]
        return f"<dir>/{folder}/raw/train-images-idx3-ubyte.gz (+ train-labels, t10k-images, t10k-labels)"
    if name in _CIFAR_FOLDERS:
        return f"<dir>/{_CIFAR_FOLDERS[name]}/ (torchvision's extracted python batches)"
    return "<dir>/train/<class>/*.jpg and <dir>/val/<class>/*.jpg (ImageFolder)"


def not_found(name: str, roots: list[Path], reason: str = "") -> DataError:
    where = ", ".join(str(r) for r in roots)
    why = f"; download failed: {reason}" if reason else ""
    return DataError(
        f"{name} not found (looked in {where}){why}. Pass --data-dir DIR (or set ${ENV_VAR}) to a folder laid "
        f"out as {expected_layout(name)}"
    )


def _read_exactly(stream: BinaryIO, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``stream``; the number of bytes read (fewer only at the end of the data)."""
    view, done = memoryview(buffer), 0
    while done < len(buffer):
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            break
        done += got
    return done


def _idx_dims(stream: BinaryIO, shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """The dims an idx header declares, checked against ``shape`` (None: any count but 0)."""
    head = stream.read(4)
    if len(head) < 4:
        raise ValueError(f"only {len(head)} bytes, shorter than an idx header")
    zero, dtype_code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"not an unsigned-byte idx file (magic {head.hex()}, expected 000008..)")
    if ndim != len(shape):
        raise ValueError(f"{ndim}-dimensional, expected {len(shape)} dimensions")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError("truncated inside its header")
    dims = struct.unpack(">" + "I" * ndim, raw_dims)
    if dims[0] == 0:
        raise ValueError("holds no items (its header declares a count of 0)")
    if any(want is not None and got != want for got, want in zip(dims, shape, strict=True)):
        want = " x ".join("N" if w is None else str(w) for w in shape)
        raise ValueError(f"has dims {' x '.join(map(str, dims))}, expected {want}")
    return dims


def _read_idx(path: Path, shape: tuple[int | None, ...]) -> torch.Tensor:
    """An idx file (gzip or not) as a uint8 tensor of the dims its header declares, read in one buffer of
    exactly that size: the header is read (decompressed) first, the size refused if it cannot fit, and a
    file with more or fewer bytes than declared is an error, so a small gzip that inflates to gigabytes is
    never inflated."""
    try:
        with open(open_regular(path), "rb") as raw:
            stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
            dims = _idx_dims(stream, shape)
            count = math.prod(dims)
            check_fits(
                count,
                f"reading {path}",
                rule=f"{' x '.join(map(str, dims))} bytes as its header declares, in one uint8 buffer",
                fix="the file is damaged or not an idx file; replace it",
            )
            body = bytearray(count)
            got = _read_exactly(stream, body)
            if got < count:
                raise ValueError(f"truncated: its header declares {count} bytes of data, found {got}")
            if stream.read(1):
                raise ValueError(f"more data than the {count} bytes its header declares")
    except (OSError, EOFError, ValueError, struct.error, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return torch.frombuffer(body, dtype=torch.uint8).view(*dims)


def _find_idx(root: Path, name: str, split: str) -> tuple[Path, Path] | None:
    raw = root / _IDX_FOLDERS[name] / "raw"
    found = []
    for stem in _IDX_FILES[split]:
        candidates = [raw / f"{stem}.gz", raw / stem]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _download_idx(name: str, target: Path) -> None:
    from torchvision import datasets  # lazy: ~1 s of import, only to download

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    for train in (True, False):
        cls(str(target), train=train, download=True)


def load_idx(name: str, data_dir: str | None, download: bool, hints: Hints = ()) -> ImageData:
    roots, target = search_roots(data_dir, hints)
    found = [r for r in roots if _find_idx(r, name, "train") and _find_idx(r, name, "test")]
    if not found:
        if not download:
            raise not_found(name, roots)
        try:
            _download_idx(name, target)
        except Exception as exc:  # noqa: BLE001 - any download failure becomes one clear message
            raise not_found(name, roots, f"{type(exc).__name__}: {exc}") from exc
        found = [target]
    info, tensors = dataset_info(name), []
    for split in ("train", "test"):
        images_path, labels_path = _find_idx(found[0], name, split)  # type: ignore[misc]
        images = _read_idx(images_path, (None, info.image_size, info.image_size))
        labels = _read_idx(labels_path, (None,))
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels"
            )
        if int(labels.max()) >= info.num_classes:
            raise DataError(
                f"{labels_path} holds label {int(labels.max())}, outside the classes 0..{info.num_classes - 1}"
            )
        tensors += [images.unsqueeze(1).contiguous(), labels.long()]
    return ImageData(info, *tensors)


def load_cifar(name: str, data_dir: str | None, download: bool, hints: Hints = ()) -> ImageData:
    from torchvision import datasets  # lazy: ~1 s of import, only for CIFAR (not MNIST or synthetic)

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    roots, target = search_roots(data_dir, hints)
    splits = None
    for root in roots:
        if (root / _CIFAR_FOLDERS[name]).is_dir():
            try:
                splits = [cls(str(root), train=t, download=False) for t in (True, False)]
                break
            except RuntimeError as exc:
                raise DataError(f"{name} under {root} is incomplete or corrupt: {exc}") from exc
    if splits is None:
        if not download:
            raise not_found(name, roots)
        try:
            splits = [cls(str(target), train=t, download=True) for t in (True, False)]
        except Exception as exc:  # noqa: BLE001
            raise not_found(name, roots, f"{type(exc).__name__}: {exc}") from exc
    tensors = []
    for split in splits:
        tensors += [
            torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(split.targets),
        ]
    return ImageData(dataset_info(name), *tensors)


def make_synthetic(train_size: int = 1024, test_size: int = 256, seed: int = 0) -> ImageData:
    """CIFAR-shaped data with 10 learnable classes: each class is a smooth random colour template; an
    image is its template, randomly shifted and scaled, plus noise. Deterministic for a given seed."""
    info = dataset_info("synthetic")
    n, side = train_size + test_size, info.image_size
    check_fits(
        images_bytes(n, info.in_chans, side, SYNTHETIC_BYTES_PER_PIXEL),
        f"drawing {train_size} + {test_size} synthetic images",
        rule=f"{n} x {info.in_chans} x {side} x {side} x {SYNTHETIC_BYTES_PER_PIXEL} bytes: float32 working "
        "copies and the uint8 result",
        fix="lower subset / test_subset (--set subset=N)",
    )
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(info.num_classes, 3, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic", align_corners=False)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, info.num_classes, (n,), generator=g)
        gain = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=g)
        shifts = torch.randint(-3, 4, (n, 2), generator=g)
        images = templates[labels] * gain + 0.15 * torch.randn(n, 3, 32, 32, generator=g)
        images = torch.stack(
            [img.roll(tuple(s.tolist()), dims=(1, 2)) for img, s in zip(images, shifts, strict=True)]
        )
        return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels

    return ImageData(info, *split(train_size), *split(test_size))


def take_subset(
    images: torch.Tensor, labels: torch.Tensor, n: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` items of a fixed permutation (seed 0, independent of the training seed, so every run
    with the same ``n`` sees the same images)."""
    if n is None or n >= images.shape[0]:
        return images, labels
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(0))[:n]
    return images[order], labels[order]


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    subset: int | None = None,
    test_subset: int | None = None,
    download: bool = True,
    hints: Hints = (),
) -> ImageData:
    """Load a small dataset (everything but ``imagenet`` and ``folder``) as uint8 CPU tensors. ``hints``: folders a file
    names, looked in last and read only (see :func:`search_roots`)."""
    info = dataset_info(name)
    if info.name == "synthetic":
        data = make_synthetic(subset or 1024, test_subset or 256)
    elif info.name in _IDX_FOLDERS:
        data = load_idx(info.name, data_dir, download, hints)
    elif info.name in _CIFAR_FOLDERS:
        data = load_cifar(info.name, data_dir, download, hints)
    else:
        raise DataError(f"'{name}' is not a tensor dataset; it streams from an ImageFolder")
    train_x, train_y = take_subset(data.train_x, data.train_y, subset)
    test_x, test_y = take_subset(data.test_x, data.test_y, test_subset)
    return ImageData(data.info, train_x, train_y, test_x, test_y)
