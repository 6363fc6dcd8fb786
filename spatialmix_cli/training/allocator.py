"""glibc malloc settings for PyTorch on CPU: keep freed memory in the process instead of handing it back.

Why: by default glibc serves every allocation above a threshold (≤ 32 MiB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed. A training step of ConvMixer-256/8 at batch 128 allocates and frees
hundreds of 32 MiB activations, and each fresh mapping is zero-filled page by page by the kernel: on the
2-core benchmark machine that page-fault work costs more than the convolutions (an element-wise add of two
32 MiB tensors: 40 ms with the defaults, 8 ms tuned). Intel's PyTorch CPU guide fixes the same thing by
preloading jemalloc or tcmalloc; ``mallopt`` gets it from the C library the process already has, with no
preload and no new dependency.

The setting is process-wide, so only the ``spatialmix`` command turns it on (once, at start); the
benchmark runs its plain-PyTorch reference in a process of its own that never turns it on. It changes no result, only speed, and
means the process keeps its peak memory until it exits; fragmentation adds to it (ConvMixer-256/8 chans at
batch 128: 3.1-3.4 GiB peak RSS tuned against 2.4 GiB with the defaults, which page-fault 3.4 GiB of fresh
memory per step). ``SPATIALMIX_MALLOC=default`` leaves glibc alone.
Off glibc (macOS, musl, Windows) every call is a no-op that returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# glibc's documented defaults, restored by tune_malloc(False).
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_NEVER = -1  # M_TRIM_THRESHOLD = -1 disables trimming completely (mallopt(3))

ENV = "SPATIALMIX_MALLOC"


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_malloc(enabled: bool = True) -> bool:
    """``enabled``: no ``mmap`` for large blocks and no trimming, so freed activations are reused in place;
    otherwise glibc's defaults, and the kept free memory is returned to the system. Returns True when the
    setting was applied (glibc present and both ``mallopt`` calls accepted)."""
    libc = _glibc()
    if libc is None:
        return False
    mmap_max, trim = (0, _NEVER) if enabled else (_DEFAULT_MMAP_MAX, _DEFAULT_TRIM_THRESHOLD)
    applied = bool(libc.mallopt(_M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))
    if not enabled:
        # Give back the free memory kept so far, or later allocations would still be served from it
        # without page faults, unlike in a process that never tuned it.
        libc.malloc_trim(0)
    return applied


def tune_malloc_from_env(environ: dict[str, str] | None = None) -> bool:
    """The command's start-up call: tune unless ``SPATIALMIX_MALLOC=default``."""
    value = (os.environ if environ is None else environ).get(ENV, "tuned").strip().lower()
    return tune_malloc(True) if value != "default" else False
