"""What the CPU can do: its model name and whether it has native bf16 arithmetic.

Speed ratios differ from one CPU to the next (AVX2 against AVX-512; bf16 dot products or none), so the
benchmark records these, and bf16 autocast on a CPU (``cpu_bf16``) is refused where the CPU has no bf16
units: oneDNN would emulate them, slower than float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Linux /proc/cpuinfo flags of instructions that compute in bf16: x86 dot products and AMX tiles, Arm's BF16.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@dataclass(frozen=True)
class CpuInfo:
    name: str | None  # model name, e.g. "AMD EPYC" (None where /proc/cpuinfo is absent or has none)
    flags: frozenset[str]

    @property
    def bf16(self) -> bool:
        """Native bf16 arithmetic. Off Linux (no /proc/cpuinfo) it is unknown, taken as absent."""
        return bool(self.flags & BF16_FLAGS)


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The first CPU's model name and feature flags from Linux's ``/proc/cpuinfo`` (x86 ``flags``, Arm
    ``Features``)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return CpuInfo(None, frozenset())
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    return CpuInfo(
        name.group(1).strip() if name else None, frozenset(flags.group(1).split() if flags else ())
    )
