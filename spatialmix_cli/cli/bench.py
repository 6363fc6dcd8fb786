"""``spatialmix bench``: training / evaluation / PGD-2 throughput of the project's paths against plain
PyTorch references, written to bench.json (the library lives in ``spatialmix_cli.bench``)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer

from .. import bench
from ..config import TrainConfig
from ..errors import ConfigError, check_choice
from ..layers import LEARN_MODES
from ..limits import MAX_BENCH_BATCH, MAX_BENCH_ITERS, check_at_most
from ..models import list_models
from ..runtime import check_bf16, resolve_device
from ..safefiles import atomic_write_text, check_target
from . import options as opt
from .output import console, emit_json, table

_DEFAULTS = bench.BenchSettings()


def bench_command(
    preset: Annotated[
        list[str] | None,
        typer.Option("--preset", help="Model preset (repeatable). Default: convmixer_256_8_k5_p2."),
    ] = None,
    learn: Annotated[str, typer.Option("--learn", help="Learn modes, comma-separated.")] = "full,chans",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per step.")] = 128,
    iters: Annotated[
        int, typer.Option("--iters", help="Timed iterations (median reported).")
    ] = _DEFAULTS.iters,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed iterations first.")] = _DEFAULTS.warmup,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the project's training forward (default: as `train` does for a long run: "
            "on CUDA, not on CPU).",
            show_default=False,
        ),
    ] = None,
    channels_last: Annotated[
        bool,
        typer.Option("--channels-last/--no-channels-last", help="Channels-last layout on the project path."),
    ] = True,
    tune_malloc: Annotated[
        bool,
        typer.Option("--tune-malloc/--no-tune-malloc", help="The tuned allocator on the project path."),
    ] = True,
    cpu_bf16: Annotated[
        bool,
        typer.Option(
            "--cpu-bf16/--no-cpu-bf16",
            help="bf16 autocast on the project path on a CPU (as `train --cpu-bf16`; needs native bf16 units).",
        ),
    ] = False,
    peak_gflops: Annotated[
        float | None, typer.Option("--peak-gflops", help="The machine's peak GFLOP/s, for % of peak.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON.")] = Path("bench.json"),
    device: opt.Device = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Measure img/s of training, evaluation and PGD-2 next to plain PyTorch; write bench.json."""
    presets = preset or list(bench.DEFAULT_PRESETS)
    for name in presets:
        if name not in list_models():
            raise ConfigError(f"unknown preset '{name}'; `spatialmix train --list-models` lists them")
    modes = [m.strip() for m in learn.split(",") if m.strip()]
    if not modes:
        raise ConfigError(f"--learn needs at least one learn mode ({', '.join(LEARN_MODES)}), got {learn!r}")
    for mode in modes:  # before any row's process is spawned
        check_choice("learn mode", mode, LEARN_MODES)
    # A missing GPU or bf16 units are clean errors here, not a worker's traceback.
    check_bf16(TrainConfig(cpu_bf16=cpu_bf16), resolve_device(device or "auto"))
    if iters < 1 or warmup < 0 or batch_size < 2:
        raise ConfigError("--iters must be >= 1, --warmup >= 0 and --batch-size >= 2")
    check_at_most("--iters", iters, MAX_BENCH_ITERS)
    check_at_most("--warmup", warmup, MAX_BENCH_ITERS)
    check_at_most("--batch-size", batch_size, MAX_BENCH_BATCH)
    if peak_gflops is not None and not (math.isfinite(peak_gflops) and peak_gflops > 0):
        raise ConfigError(f"--peak-gflops must be a positive number, got {peak_gflops}")
    check_target(out)  # a link at --out is refused before the minutes of measuring, not after
    settings = bench.BenchSettings(batch_size=batch_size, iters=iters, warmup=warmup, device=device or "auto",
                                   compile=compile, channels_last=channels_last, tune_malloc=tune_malloc,
                                   cpu_bf16=cpu_bf16, peak_gflops=peak_gflops)  # fmt: skip
    err = console()
    started = time.perf_counter()

    def announce(row: dict) -> None:
        err.print(f"bench {row['preset']} learn={row['learn']}: train ×{row['train_ratio']:.2f}")
        if json_:
            emit_json(row)

    err.print(
        f"bench {', '.join(presets)} learn={','.join(modes)} "
        "(reference and project steps interleaved, each side in its own process) ..."
    )
    rows = bench.bench_rows(presets, modes, settings, on_row=announce)
    report = {"machine": bench.machine(), "settings": dataclasses.asdict(settings), "rows": rows,
              "seconds": time.perf_counter() - started}  # fmt: skip
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    columns = [
        "preset",
        "learn",
        "train img/s",
        "ref",
        "×",
        "eval img/s",
        "ref",
        "×",
        "PGD-2 img/s",
        "ref",
        "×",
    ]

    def ratio(r: dict, kind: str) -> str:
        q1, q3 = r[f"{kind}_ratio_quartiles"]
        return f"{r[f'{kind}_ratio']:.2f} [{q1:.2f}-{q3:.2f}]"

    err.print(table("throughput (median img/s; ×: ratio, then the quartiles of the paired per-step ratios)", columns, [
        [r["preset"], r["learn"], r["train_img_s"], r["train_ref_img_s"], ratio(r, "train"), r["eval_img_s"],
         r["eval_ref_img_s"], ratio(r, "eval"), r["attack_img_s"], r["attack_ref_img_s"], ratio(r, "attack")]
        for r in rows
    ]))  # fmt: skip
    err.print(f"wrote {out}")
