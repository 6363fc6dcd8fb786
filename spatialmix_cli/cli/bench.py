"""``spatialmix bench``: training / evaluation / PGD-2 throughput of the project's paths against plain
PyTorch references, written to bench.json (the library lives in ``spatialmix_cli.commands.bench``,
imported when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..config.bench import DEFAULT_PRESETS, BenchSettings
from ..config.coercion import OPTION
from . import options as opt
from .output import console, emit_json, print_result, table

Presets = Annotated[
    list[str] | None,
    typer.Option("--preset", help="Model preset (repeatable). Default: convmixer_256_8_k5_p2."),
]
Learn = Annotated[str, typer.Option("--learn", help="Learn modes, comma-separated.")]
BenchOut = Annotated[Path, typer.Option("--out", "-o", help="Where to write the JSON.")]
_COLUMNS = ["preset", "learn", "train img/s", "ref", "×", "eval img/s", "ref", "×", "PGD-2 img/s", "ref", "×"]


EXAMPLES = opt.examples(
    "spatialmix bench --iters 5 --warmup 1 --out bench.json",
    "spatialmix bench --preset convmixer_256_8_k5_p2 --learn chans --no-compile --json",
)  # the --help epilog


@opt.with_panels()
@opt.with_key_options(BenchSettings, before="out")
def bench_command(
    preset: Presets = None,
    learn: Learn = "full,chans",
    out: BenchOut = Path("bench.json"),
    json_: opt.Json = False,
    debug: opt.Debug = False,
    **settings: Any,
) -> None:
    """Measure img/s of training, evaluation and PGD-2 next to plain PyTorch; write bench.json."""
    from ..commands import bench

    presets = preset or list(DEFAULT_PRESETS)
    modes = [m.strip() for m in learn.split(",") if m.strip()]
    given = BenchSettings.from_dict(opt.given_config(settings), OPTION)
    bench.check_request(presets, modes, given, out, learn=learn)
    err = console()

    def announce(row: dict) -> None:
        err.print(f"bench {row['preset']} learn={row['learn']}: train ×{row['train_ratio']:.2f}")
        if json_:
            emit_json(row)

    err.print(
        f"bench {', '.join(presets)} learn={','.join(modes)} "
        "(reference and project steps interleaved, each side in its own process) ..."
    )
    report = bench.write_bench(presets, modes, given, out, on_row=announce)
    print_result(_throughput_table(report["rows"]), json_)
    err.print(f"wrote {out}")


def _throughput_table(rows: list[dict[str, Any]]) -> Table:
    def ratio(r: dict, kind: str) -> str:
        q1, q3 = r[f"{kind}_ratio_quartiles"]
        return f"{r[f'{kind}_ratio']:.2f} [{q1:.2f}-{q3:.2f}]"

    def row(r: dict) -> list[Any]:
        return [
            r["preset"],
            r["learn"],
            r["train_img_s"],
            r["train_ref_img_s"],
            ratio(r, "train"),
            r["eval_img_s"],
            r["eval_ref_img_s"],
            ratio(r, "eval"),
            r["attack_img_s"],
            r["attack_ref_img_s"],
            ratio(r, "attack"),
        ]

    title = "throughput (median img/s; ×: ratio, then the quartiles of the paired per-step ratios)"
    return table(title, _COLUMNS, [row(r) for r in rows])
