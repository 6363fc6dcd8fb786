"""``spatialmix bench``: training / evaluation / PGD-2 throughput of the project's paths against plain
PyTorch references, written to bench.json (the library lives in ``spatialmix_cli.commands.bench``,
imported when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..config.bench import DEFAULT_PRESETS, BenchSettings
from . import options as opt
from .output import console, emit_json, print_result, table

_DEFAULTS = BenchSettings()

Presets = Annotated[
    list[str] | None,
    typer.Option("--preset", help="Model preset (repeatable). Default: convmixer_256_8_k5_p2."),
]
Learn = Annotated[str, typer.Option("--learn", help="Learn modes, comma-separated.")]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", help="Images per step.")]
Iters = Annotated[int, typer.Option("--iters", help="Timed iterations (median reported).")]
Warmup = Annotated[int, typer.Option("--warmup", help="Untimed iterations first.")]
Compile = Annotated[
    bool | None,
    typer.Option(
        "--compile/--no-compile",
        help="torch.compile the project's training forward (default: as `train` does for a long run: "
        "on CUDA, not on CPU).",
        show_default=False,
    ),
]
ChannelsLast = Annotated[
    bool, typer.Option("--channels-last/--no-channels-last", help="Channels-last layout on the project path.")
]
TuneMalloc = Annotated[
    bool, typer.Option("--tune-malloc/--no-tune-malloc", help="The tuned allocator on the project path.")
]
CpuBf16 = Annotated[
    bool,
    typer.Option(
        "--cpu-bf16/--no-cpu-bf16",
        help="bf16 autocast on the project path on a CPU (as `train --set cpu_bf16=true`; needs native bf16 "
        "units).",
    ),
]
PeakGflops = Annotated[
    float | None, typer.Option("--peak-gflops", help="The machine's peak GFLOP/s, for % of peak.")
]
BenchOut = Annotated[Path, typer.Option("--out", "-o", help="Where to write the JSON.")]
_COLUMNS = ["preset", "learn", "train img/s", "ref", "×", "eval img/s", "ref", "×", "PGD-2 img/s", "ref", "×"]


EXAMPLES = opt.examples(
    "spatialmix bench --iters 5 --warmup 1 --out bench.json",
    "spatialmix bench --preset convmixer_256_8_k5_p2 --learn chans --no-compile --json",
)  # the --help epilog


@opt.with_panels()
def bench_command(
    preset: Presets = None,
    learn: Learn = "full,chans",
    batch_size: BatchSize = 128,
    iters: Iters = _DEFAULTS.iters,
    warmup: Warmup = _DEFAULTS.warmup,
    compile: Compile = None,
    channels_last: ChannelsLast = True,
    tune_malloc: TuneMalloc = True,
    cpu_bf16: CpuBf16 = False,
    peak_gflops: PeakGflops = None,
    out: BenchOut = Path("bench.json"),
    device: opt.Device = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Measure img/s of training, evaluation and PGD-2 next to plain PyTorch; write bench.json."""
    from ..commands import bench

    presets = preset or list(DEFAULT_PRESETS)
    modes = [m.strip() for m in learn.split(",") if m.strip()]
    settings = BenchSettings(batch_size=batch_size, iters=iters, warmup=warmup, device=device or "auto",
                                   compile=compile, channels_last=channels_last, tune_malloc=tune_malloc,
                                   cpu_bf16=cpu_bf16, peak_gflops=peak_gflops)  # fmt: skip
    bench.check_request(presets, modes, settings, out, learn=learn)
    err = console()

    def announce(row: dict) -> None:
        err.print(f"bench {row['preset']} learn={row['learn']}: train ×{row['train_ratio']:.2f}")
        if json_:
            emit_json(row)

    err.print(
        f"bench {', '.join(presets)} learn={','.join(modes)} "
        "(reference and project steps interleaved, each side in its own process) ..."
    )
    report = bench.write_bench(presets, modes, settings, out, on_row=announce)
    print_result(_throughput_table(report["rows"]), json_)
    err.print(f"wrote {out}")


def _throughput_table(rows: list[dict[str, Any]]) -> Table:
    def ratio(r: dict, kind: str) -> str:
        q1, q3 = r[f"{kind}_ratio_quartiles"]
        return f"{r[f'{kind}_ratio']:.2f} [{q1:.2f}-{q3:.2f}]"

    return table("throughput (median img/s; ×: ratio, then the quartiles of the paired per-step ratios)", _COLUMNS, [
        [r["preset"], r["learn"], r["train_img_s"], r["train_ref_img_s"], ratio(r, "train"), r["eval_img_s"],
         r["eval_ref_img_s"], ratio(r, "eval"), r["attack_img_s"], r["attack_ref_img_s"], ratio(r, "attack")]
        for r in rows
    ])  # fmt: skip
