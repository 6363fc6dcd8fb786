"""What one ``spatialmix bench`` measurement runs with (:mod:`.bench` measures), free of torch so that
the CLI's --help can show the defaults."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PRESETS = ("convmixer_256_8_k5_p2",)


@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = 128
    iters: int = 11
    warmup: int = 3  # the tuned allocator grows its heap over the first 2-3 steps, then never faults again
    device: str = "auto"
    compile: bool | None = None  # None: as `train` runs a long run (compiled on CUDA, eager on CPU)
    channels_last: bool = True  # the project path's memory format (the trainer's default)
    tune_malloc: bool = True  # the project path runs with allocator.tune_malloc (the reference never does)
    cpu_bf16: bool = False  # the project path in bf16 autocast on a CPU too (the reference is always float32)
    seed: int = 0
    peak_gflops: float | None = None  # the machine's peak, for the "% of peak" column (None: unknown)
