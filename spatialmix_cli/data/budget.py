"""How many bytes a job may use on this machine, the check that refuses a job that cannot fit (a clean
``ResourceError``, exit 2, instead of letting the allocator fail or the kernel's OOM killer end the
process), and the estimates of the data layer.

The rule of every estimate (here, in :mod:`~spatialmix_cli.analysis.spectra` and in
:mod:`~spatialmix_cli.training.memory`): the bytes of every tensor that exists *at the same moment*, counted
from shapes alone, at the peak of the step it guards (measured once per formula; the tests keep each within
2x). The data layer's:

- images: N x C x H x W x bytes per element, for every copy alive at once — the uint8 store (1 byte);
  synthetic generation holds about 4 float32 working copies besides (17 bytes a pixel); a resize writes
  a uint8 output (1 byte an output pixel) where torchvision has a native uint8 kernel, else a float32
  copy of the input (4 bytes an input pixel) and a float32 output (4 more an output pixel) besides;
- an idx file: the product of the dims its header declares, read into one uint8 buffer.

The host's budget is 80% of ``MemAvailable`` (``/proc/meminfo``; elsewhere 80% of physical memory; 80% of
the address space left under ``ulimit -v`` where that is less); ``SPATIALMIX_MEMORY_LIMIT`` (bytes, or
like ``2G``) replaces it, and a device's (:func:`~spatialmix_cli.training.memory.device_budget`), so a
test or a shared machine can set it exactly.
"""

from __future__ import annotations

import os
import platform
import re
import resource
from dataclasses import dataclass

import torch

from ..errors import ConfigError, ResourceError

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


def env_budget() -> Budget | None:
    """The budget ``$SPATIALMIX_MEMORY_LIMIT`` sets, which replaces every measured one; None if unset."""
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
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", encoding="ascii") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return max(0, limit - mapped)


def host_budget() -> Budget | None:
    """The host's budget; None where nothing can be measured (then nothing is refused)."""
    budget = env_budget()
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


def images_bytes(n: int, channels: int, size: int, bytes_per_element: int = 1) -> int:
    """N x C x H x W x bytes per element (square images)."""
    return n * channels * size * size * bytes_per_element


def native_uint8_resize() -> bool:
    """Whether torchvision resizes uint8 images without a float32 copy here (bilinear, antialiased):
    it does on CPUs with AVX2 / AVX-512 and on Arm (torchvision's own test)."""
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
