"""The memory a training run needs, estimated before its data is loaded or its model built, and the
budget of the device it runs on; a run that cannot fit is refused (a ``ResourceError``, exit 2).

By the rule of :mod:`spatialmix_cli.data.budget` (every tensor alive at the same moment, from shapes alone):
parameters x 4 bytes x 4 (weights, gradients, AdamW's two moments; 3 with SGD momentum, 2 without; frozen
parameters x 4 bytes once), counted on the meta device; plus the step's peak, the largest of: the
activations autograd saves in one forward of one batch (measured by running the model on the meta device)
x 1.25 for the gradients in flight during backward, + the float32 batch (B x C x H x W x 4); an evaluation
batch (3 x its largest activation + its float32 copy); the augmentation (B x C x (H+2p)^2 bytes of uint8
padding by crop_pad p, + the crops); plus the dataset's uint8 store (train + test images x C x H x W, +
8-byte labels).

A CUDA device's budget is 80% of its free memory; ``SPATIALMIX_MEMORY_LIMIT`` replaces it as it replaces
the host's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .. import models  # models.create_model, looked up per call: tests count the models built
from ..config.train import TrainConfig
from ..data.budget import FRACTION, Budget, check_fits, env_budget, format_bytes, host_budget, images_bytes
from ..data.info import SPLIT_SIZES, DatasetInfo, planning_info
from ..errors import ConfigError, ResourceError

BACKWARD_FACTOR = 1.25  # gradients in flight during backward, on top of the saved activations


def device_budget(device: torch.device | str) -> Budget | None:
    """The budget of ``device``: the host's for a CPU, 80% of the free memory of a CUDA device."""
    device = torch.device(device)
    if device.type != "cuda":
        return host_budget()
    budget = env_budget()
    if budget is not None:
        return budget
    free, _ = torch.cuda.mem_get_info(device)
    return Budget(int(free * FRACTION), f"{device} can give (80% of its free memory)")


@dataclass(frozen=True)
class Part:
    """One term of an estimate: what it is, its bytes, how they were counted, and how to shrink it."""

    name: str
    nbytes: int
    rule: str
    fix: str


@dataclass(frozen=True)
class Estimate:
    """The terms that exist together at the peak of a job."""

    what: str
    parts: tuple[Part, ...]

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def check(self, budget: Budget | None) -> None:
        """A ResourceError naming every term, and the fix of the largest, if the total exceeds ``budget``."""
        terms = "; ".join(f"{p.name} {format_bytes(p.nbytes)}: {p.rule}" for p in self.parts if p.nbytes)
        largest = max(self.parts, key=lambda p: p.nbytes)
        check_fits(self.nbytes, self.what, rule=terms, fix=largest.fix, budget=budget)


def _optimizer_copies(optimizer: str, momentum: float) -> int:
    """Float32 copies of each trainable parameter: weights, gradients and the optimizer's state."""
    if optimizer == "adamw":
        return 4
    return 3 if momentum > 0 else 2


def saved_activations(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(total, largest) bytes of the tensors autograd saves for backward in one forward of ``model`` on
    ``x``; run with both on the meta device it costs no memory. Each storage is counted once."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        # The storage's identity: on the meta device every data_ptr() is 0, and torch has no public id for it
        seen[storage._cdata] = storage.nbytes()
        return t

    with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        warnings.simplefilter("ignore")  # e.g. 'same' padding of even kernels: not the user's business here
        model(x)
    return sum(seen.values()), max(seen.values(), default=0)


@dataclass(frozen=True)
class _Shapes:
    """What ``train(cfg)`` holds and runs, in images: their side and channels, the crop padding, how many are
    loaded (train + test), and the batch of one step (all processes and one process) and of an evaluation."""

    size: int
    chans: int
    pad: int
    n_images: int
    batch: int
    local: int
    evaluated: int


def _shapes(cfg: TrainConfig, info: DatasetInfo, world: int) -> _Shapes:
    size, chans = cfg.image_size or info.image_size, info.in_chans
    classify = cfg.task == "classify"
    pad = (info.crop_pad if classify else 0) if cfg.crop_pad is None else cfg.crop_pad  # as prepare_data
    n_train, n_test = SPLIT_SIZES.get(cfg.dataset, (0, 0))  # 0: streamed from folders (imagenet, folder)
    if cfg.dataset == "synthetic":  # drawn at the size asked for
        n_train, n_test = cfg.subset or n_train, cfg.test_subset or n_test
    else:
        n_train, n_test = min(cfg.subset or n_train, n_train), min(cfg.test_subset or n_test, n_test)
    batch = min(cfg.batch_size, n_train or cfg.batch_size)
    local = max(1, batch // world)
    evaluated = min(cfg.eval_batch_size, n_test or cfg.eval_batch_size)
    return _Shapes(size, chans, pad, n_train + n_test, batch, local, evaluated)


def _count_model(cfg: TrainConfig, info: DatasetInfo, shapes: _Shapes) -> tuple[int, int, int, int]:
    """(trainable, frozen) parameters of ``cfg``'s model and (total, largest) bytes of the activations it
    saves for backward on one process's batch, all counted on the meta device."""
    size = shapes.size
    try:
        with torch.device("meta"):
            model = models.create_model(cfg.arch, **cfg.model_kwargs(info)).train()
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
            saved, largest = saved_activations(model, torch.empty(shapes.local, shapes.chans, size, size))
    except ValueError as exc:  # BatchNorm on one value per channel (batch 1 of 1x1 maps), say
        raise ConfigError(f"training {cfg.arch} on {cfg.dataset} cannot run: {exc}") from None
    except (RuntimeError, OverflowError) as exc:  # a tensor whose byte count overflows int64, say
        raise ResourceError(
            f"training {cfg.arch} on {cfg.dataset} asks for tensors too large to count "
            f"({str(exc).splitlines()[0]}); lower --batch-size, --width or image_size"
        ) from None
    return trainable, frozen, saved, largest


def _step_part(shapes: _Shapes, saved: int, largest: int) -> Part:
    """The step's peak: the largest of three moments, forward + backward of a batch, an evaluation batch (no
    saved tensors: about 3 of the largest activations at once), and the augmentation of a batch."""
    size, chans, pad = shapes.size, shapes.chans, shapes.pad
    local, evaluated, batch = shapes.local, shapes.evaluated, shapes.batch
    moments = [
        (
            int(saved * BACKWARD_FACTOR) + images_bytes(local, chans, size, 4),
            f"batch {local} at {size} x {size}: activations saved for backward (counted on the meta device) "
            f"x {BACKWARD_FACTOR} + the float32 batch",
            "lower --batch-size, --width or image_size",
        ),
        (
            3 * largest * evaluated // local + images_bytes(evaluated, chans, size, 4),
            f"evaluation batch {evaluated}: 3 x its largest activation + the float32 batch",
            "lower eval_batch_size",
        ),
        (
            images_bytes(batch, chans, size + 2 * pad) + images_bytes(batch, chans, size, 2) if pad else 0,
            f"padding by crop_pad {pad}: {batch} x {chans} x {size + 2 * pad}^2 bytes + the uint8 crops",
            f"lower crop_pad (now {pad})",
        ),
    ]
    step, rule, fix = max(moments, key=lambda m: m[0])
    return Part("step", step, rule, fix)


def training_estimate(cfg: TrainConfig, world: int = 1) -> Estimate:
    """The peak memory of ``train(cfg)`` on the device, from sizes only: the model is built and run on the
    meta device. ``world``: processes under torchrun (each holds the data and the model, and runs
    ``batch_size / world`` images of every step)."""
    info = planning_info(cfg.dataset, cfg.data_dir)
    shapes = _shapes(cfg, info, world)
    trainable, frozen, saved, largest = _count_model(cfg, info, shapes)
    copies = _optimizer_copies(cfg.optimizer, cfg.momentum)
    n_images, chans, size = shapes.n_images, shapes.chans, shapes.size
    parts = (
        Part(
            "model",
            (trainable * copies + frozen) * 4,
            f"{trainable} trainable parameters x 4 bytes x {copies} + {frozen} frozen x 4 bytes",
            "lower --width, --depth or kernel (--set kernel=N)",
        ),
        _step_part(shapes, saved, largest),
        Part(
            "data",
            images_bytes(n_images, chans, size) + 8 * n_images,
            f"{n_images} images x {chans} x {size} x {size} bytes as uint8 + int64 labels",
            "lower subset / test_subset (--set subset=N) or image_size",
        ),
    )
    return Estimate(f"training {cfg.arch} on {cfg.dataset}", parts)


def check_training(cfg: TrainConfig, device: torch.device, world: int = 1) -> None:
    """Refuse ``cfg`` before its data is loaded or its model built if its peak cannot fit on ``device``."""
    training_estimate(cfg, world).check(device_budget(device))
