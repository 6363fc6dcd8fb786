"""What one ``spatialmix bench`` measurement runs with (:mod:`spatialmix_cli.commands.bench` measures),
free of torch so that the CLI's --help can show the defaults. Each key declares its facts once
(:func:`.keys.key`): the command's options are made from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import coercion
from .coercion import validate_keys
from .keys import OUTPUT, RUNTIME, key
from .limits import DEVICE, MAX_BENCH_BATCH, MAX_BENCH_ITERS, SEED, above, at_least, work_limit

DEFAULT_PRESETS = ("convmixer_256_8_k5_p2",)


@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = key(
        128, bounds=(at_least(2), work_limit(MAX_BENCH_BATCH)), panel=RUNTIME, help="Images per step."
    )
    iters: int = key(
        11,
        bounds=(at_least(1), work_limit(MAX_BENCH_ITERS)),
        panel=RUNTIME,
        help="Timed iterations (median reported).",
    )
    # the tuned allocator grows its heap over the first 2-3 steps, then never faults again
    warmup: int = key(
        3, bounds=(at_least(0), work_limit(MAX_BENCH_ITERS)), panel=RUNTIME, help="Untimed iterations first."
    )
    device: str = key("auto", bounds=DEVICE, panel=RUNTIME, help="auto | cpu | cuda | cuda:N.")
    compile: bool | None = key(
        None,
        panel=RUNTIME,
        help="torch.compile the project's training forward (default: as `train` does for a long run: on "
        "CUDA, not on CPU).",
    )
    channels_last: bool = key(
        True, panel=RUNTIME, help="Channels-last layout on the project path (the trainer's default)."
    )
    # the reference never tunes the allocator
    tune_malloc: bool = key(True, panel=RUNTIME, help="The tuned allocator on the project path.")
    # the reference is always float32
    cpu_bf16: bool = key(
        False,
        panel=RUNTIME,
        help="bf16 autocast on the project path on a CPU (as `train --set cpu_bf16=true`; needs native bf16 "
        "units).",
    )
    seed: int = key(0, bounds=SEED, panel=RUNTIME, help="Seed of the models' weights and the inputs.")
    peak_gflops: float | None = key(
        None, bounds=above(0), panel=OUTPUT, help="The machine's peak GFLOP/s, for % of peak."
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "bench") -> BenchSettings:
        """Settings from a (partial) mapping; with ``where`` "option", errors name the options."""
        return coercion.updated(cls(), data, where, what="bench settings", options=True)

    def validate(self, where: str = "bench") -> None:
        validate_keys(self, where, options=True)
