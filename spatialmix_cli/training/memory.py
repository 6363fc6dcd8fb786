"""Memory estimates made from sizes before anything is allocated, and the one check that refuses a job
that cannot fit (a clean ``ResourceError``, exit 2) instead of letting the allocator fail or the kernel's
OOM killer end the process.

The rule: an estimate is the bytes of every tensor that exists *at the same moment*, counted from shapes
alone, at the peak of the step it guards (measured once per formula; the tests keep each within 2x):

- images: N x C x H x W x bytes per element, for every copy alive at once — the uint8 store (1 byte);
  synthetic generation holds about 4 float32 working copies besides (17 bytes a pixel); a resize writes
  a uint8 output (1 byte an output pixel) where torchvision has a native uint8 kernel, else a float32
  copy of the input (4 bytes an input pixel) and a float32 output (4 more an output pixel) besides;
- an idx file: the product of the dims its header declares, read into one uint8 buffer;
- training: parameters x 4 bytes x 4 (weights, gradients, AdamW's two moments; 3 with SGD momentum,
  2 without; frozen parameters x 4 bytes once), counted on the meta device; plus the step's peak, the
  largest of: the activations autograd saves in one forward of one batch (measured by running the model
  on the meta device) x 1.25 for the gradients in flight during backward, + the float32 batch
  (B x C x H x W x 4); an evaluation batch (3 x its largest activation + its float32 copy); the
  augmentation (B x C x (H+2p)^2 bytes of uint8 padding by crop_pad p, + the crops); plus the dataset's
  uint8 store (train + test images x C x H x W, + 8-byte labels);
- spectra: a drawn bank, n x k^2 x 4 bytes (x 3 when smoothed); per FFT chunk of c filters, c x P^2 x 24 bytes (the float32 zero-padded input, the complex64
  FFT, its float32 magnitude...), plus P^2 x 16 bytes for the envelope and its statistics; the chunk
  shrinks from 64 filters to what fits, down to one.

The budget is 80% of ``MemAvailable`` (``/proc/meminfo``; elsewhere 80% of physical memory; 80% of the
address space left under ``ulimit -v`` where that is less), or 80% of a
CUDA device's free memory for what lives there; ``SPATIALMIX_MEMORY_LIMIT`` (bytes, or like ``2G``)
replaces both, so a test or a shared machine can set it exactly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import ConfigError, ResourceError

if TYPE_CHECKING:
    from ..config.train import TrainConfig

ENV_VAR = "SPATIALMIX_MEMORY_LIMIT"
FRACTION = 0.8
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class Budget:
    """How many bytes a job may use, and where the number came from (said in every refusal)."""

    nbytes: int
    source: str

    def describe(self) -> str:
        return f"{format_bytes(self.nbytes)} {self.source}"


def format_bytes(n: float) -> str:
    """``12.3 GB`` (decimal units, as ``free -h --si`` and disk vendors count)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """``"2G"`` -> 2 * 2**30; a plain number is bytes. A ConfigError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"${ENV_VAR} must be a number of bytes or a size like 512M or 2G, got '{text}'")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _from_env() -> Budget | None:
    text = os.environ.get(ENV_VAR)
    if not text:
        return None
    return Budget(parse_size(text), f"allowed by ${ENV_VAR}")


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left() -> int | None:
    """Bytes of address space left under ``ulimit -v`` (RLIMIT_AS), or None where there is no limit: a
    batch system that sets one refuses allocations long before MemAvailable runs out."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", encoding="ascii") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(0, limit - mapped)


def host_budget() -> Budget | None:
    """The host's budget; None where nothing can be measured (then nothing is refused)."""
    budget = _from_env()
    if budget is not None:
        return budget
    available = _mem_available()
    limited = _address_space_left()
    if limited is not None and (available is None or limited < available):
        return Budget(int(limited * FRACTION), "this process may still map (80% of its ulimit -v)")
    if available is not None:
        return Budget(int(available * FRACTION), "this machine can give (80% of MemAvailable)")
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    return Budget(int(physical * FRACTION), "this machine can give (80% of its physical memory)")


def device_budget(device: torch.device | str) -> Budget | None:
    """The budget of ``device``: the host's for a CPU, 80% of the free memory of a CUDA device."""
    device = torch.device(device)
    if device.type != "cuda":
        return host_budget()
    budget = _from_env()
    if budget is not None:
        return budget
    free, _ = torch.cuda.mem_get_info(device)
    return Budget(int(free * FRACTION), f"{device} can give (80% of its free memory)")


def check_fits(nbytes: int, what: str, *, rule: str, fix: str, budget: Budget | None = None) -> None:
    """Raise a ResourceError if ``nbytes`` (an estimate by ``rule``) exceeds ``budget`` (default: the
    host's), e.g. ``drawing 1000000000 + 256 synthetic images needs about 52.2 TB (...)``."""
    budget = budget if budget is not None else host_budget()
    if budget is None or nbytes <= budget.nbytes:
        return
    raise ResourceError(
        f"{what} needs about {format_bytes(nbytes)} ({rule}), more than the {budget.describe()}; {fix}"
    )


# --- the formulas (bytes, from sizes only) ---------------------------------------------------------------
SYNTHETIC_BYTES_PER_PIXEL = 17  # 4 float32 working copies + the uint8 result (measured peak: ~13.5)
FFT_BYTES_PER_FILTER_PIXEL = 24  # zero-padded float32 input, complex64 FFT, float32 |FFT|, max (~20)
ENVELOPE_BYTES_PER_PIXEL = 24  # envelope, unit-energy envelope, their fftshifts, float64 radius / energy
BACKWARD_FACTOR = 1.25  # gradients in flight during backward, on top of the saved activations


def images_bytes(n: int, channels: int, size: int, bytes_per_element: int = 1) -> int:
    """N x C x H x W x bytes per element (square images)."""
    return n * channels * size * size * bytes_per_element


def native_uint8_resize() -> bool:
    """Whether torchvision resizes uint8 images without a float32 copy here (bilinear, antialiased):
    it does on CPUs with AVX2 / AVX-512 and on Arm (torchvision's own test)."""
    import platform

    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in (
        "aarch64",
        "arm64",
    )


def resize_bytes(n: int, channels: int, size_in: int, size_out: int) -> int:
    """The new uint8 images, plus the float32 input and output copies where the resize is not native."""
    out = images_bytes(n, channels, size_out)
    if native_uint8_resize():
        return out
    return out + images_bytes(n, channels, size_in, 4) + images_bytes(n, channels, size_out, 4)


def fft_bytes(chunk: int, pad: int) -> int:
    """One FFT chunk of ``chunk`` filters at ``pad`` x ``pad`` and the envelope statistics."""
    return pad * pad * (chunk * FFT_BYTES_PER_FILTER_PIXEL + ENVELOPE_BYTES_PER_PIXEL)


# --- training ----------------------------------------------------------------------------------------------
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
    import warnings

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


def training_estimate(cfg: TrainConfig, world: int = 1) -> Estimate:
    """The peak memory of ``train(cfg)`` on the device, from sizes only: the model is built and run on the
    meta device. ``world``: processes under torchrun (each holds the data and the model, and runs
    ``batch_size / world`` images of every step)."""
    from ..data.info import SPLIT_SIZES, planning_info
    from ..models import create_model

    info = planning_info(cfg.dataset, cfg.data_dir)
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
    try:
        with torch.device("meta"):
            model = create_model(cfg.arch, **cfg.model_kwargs(info)).train()
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
            saved, largest = saved_activations(model, torch.empty(local, chans, size, size))
    except ValueError as exc:  # BatchNorm on one value per channel (batch 1 of 1x1 maps), say
        raise ConfigError(f"training {cfg.arch} on {cfg.dataset} cannot run: {exc}") from None
    except (RuntimeError, OverflowError) as exc:  # a tensor whose byte count overflows int64, say
        raise ResourceError(
            f"training {cfg.arch} on {cfg.dataset} asks for tensors too large to count "
            f"({str(exc).splitlines()[0]}); lower --batch-size, --width or image_size"
        ) from None
    copies = _optimizer_copies(cfg.optimizer, cfg.momentum)
    n_images = n_train + n_test
    # The step's peak is the largest of three moments: forward + backward of a batch, an evaluation batch
    # (no saved tensors: about 3 of the largest activations at once), and the augmentation of a batch.
    moments = [
        (int(saved * BACKWARD_FACTOR) + images_bytes(local, chans, size, 4),
         f"batch {local} at {size} x {size}: activations saved for backward (counted on the meta device) "
         f"x {BACKWARD_FACTOR} + the float32 batch", "lower --batch-size, --width or image_size"),
        (3 * largest * evaluated // local + images_bytes(evaluated, chans, size, 4),
         f"evaluation batch {evaluated}: 3 x its largest activation + the float32 batch",
         "lower eval_batch_size"),
        (images_bytes(batch, chans, size + 2 * pad) + images_bytes(batch, chans, size, 2) if pad else 0,
         f"padding by crop_pad {pad}: {batch} x {chans} x {size + 2 * pad}^2 bytes + the uint8 crops",
         f"lower crop_pad (now {pad})"),
    ]  # fmt: skip
    step, step_rule, step_fix = max(moments, key=lambda m: m[0])
    parts = (
        Part("model", (trainable * copies + frozen) * 4,
             f"{trainable} trainable parameters x 4 bytes x {copies} + {frozen} frozen x 4 bytes",
             "lower --width, --depth or kernel (--set kernel=N)"),
        Part("step", step, step_rule, step_fix),
        Part("data", images_bytes(n_images, chans, size) + 8 * n_images,
             f"{n_images} images x {chans} x {size} x {size} bytes as uint8 + int64 labels",
             "lower subset / test_subset (--set subset=N) or image_size"),
    )  # fmt: skip
    return Estimate(f"training {cfg.arch} on {cfg.dataset}", parts)


def check_training(cfg: TrainConfig, device: torch.device, world: int = 1) -> None:
    """Refuse ``cfg`` before its data is loaded or its model built if its peak cannot fit on ``device``."""
    training_estimate(cfg, world).check(device_budget(device))
