"""``spatialmix unshuffle``: train un-shuffle ConvMixers (one run or a recipe) or re-evaluate checkpoints;
PSNR with its baselines, and the reconstruction grid (the pipeline: :mod:`spatialmix_cli.commands.unshuffle`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config.keys import UNSHUFFLE
from ..config.runfiles import GRID_FILE
from ..errors import ConfigError
from ..safefiles import check_target
from . import options as opt
from .output import console, emit_json, print_result, table
from .train import PointPrinter, stop_request

if TYPE_CHECKING:
    from ..analysis.unshuffle.scores import UnshuffleScores
    from ..commands.unshuffle import Scored

# The library (torch and all) is imported inside the functions that use it: --help needs none of it.


# after an interrupted training: how to go on
AGAIN = "then score: the same `spatialmix unshuffle` command again, with --resume"

EXAMPLES = opt.examples(
    "spatialmix unshuffle --dataset synthetic --epochs 1 --learn chans",
    "spatialmix unshuffle --eval runs/full --eval runs/chans --grid grid.png",
    "spatialmix unshuffle --recipe recipes/fig10.yaml --list",
)  # the --help epilog


@opt.with_panels()
@opt.with_config_options(UNSHUFFLE)
def unshuffle_command(
    eval_: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval",
            help="Re-evaluate a checkpoint or run dir (repeat it: full and chans side by side in one grid).",
        ),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", "-r", help="YAML recipe whose base has task: unshuffle.")
    ] = None,
    list_points: opt.ListPoints = False,
    index: opt.Index = None,
    set_: opt.Set = None,
    out: opt.Out = None,
    resume: opt.Resume = False,
    overwrite: opt.Overwrite = False,
    grid: Annotated[
        Path | None,
        typer.Option(help=f"Where to write the PNG grid (default: {GRID_FILE} in the run directory)."),
    ] = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
    **config: Any,
) -> None:
    """Restore pixel-permuted images with a patch-1 ConvMixer; test PSNR next to two baselines."""
    from ..commands.train import Training
    from ..commands.unshuffle import evaluate_checkpoints, train_and_score, unshuffle_listing

    given = opt.given_config(config)
    if grid is not None:
        check_target(grid)  # a --grid that cannot be written fails now, not after the training
    if eval_:
        training = {k for k in given if k not in ("data_dir", "download")}
        if recipe is not None or training or set_ or out is not None or list_points or index is not None:
            raise ConfigError(
                "--eval re-evaluates checkpoints; it takes no training options (only --grid, "
                "--data-dir, --download)"
            )
        download = given.get("download") is not False
        runs = evaluate_checkpoints(eval_, grid, given.get("data_dir"), download, note=console().print)
        _print_runs(runs, json_)
        return
    overrides = opt.config_overrides(config, set_)
    if list_points:
        for row in unshuffle_listing(recipe, overrides, out, resume=resume, index=index):
            emit_json(row)
        return
    with stop_request() as stop:
        printer = PointPrinter(False, summary=False, again=AGAIN)
        how = Training(resume=resume, overwrite=overwrite, callbacks=printer, stop=stop)
        runs = train_and_score(
            recipe, overrides, out, index=index, grid=grid, training=how, note=console().print
        )
        _print_runs(runs, json_)


def _print_runs(runs: Iterable[Scored], as_json: bool) -> None:
    """Each run's scores as a JSON line (``--json``) as soon as it is scored, then the table."""
    rows = []
    for run in runs:  # a generator: each run is printed as soon as it is scored
        rows.append(_row(run.name, run.scores))
        if as_json:
            emit_json(run.to_dict())
    _print_table(rows, as_json)


def _row(name: str, s: UnshuffleScores) -> list[Any]:
    return [
        name,
        s.dataset,
        s.learn,
        s.filters,
        s.width,
        s.depth,
        s.kernel,
        f"{s.psnr:.2f}",
        f"{s.psnr_scrambled:.2f}",
        f"{s.psnr_mean:.2f}",
        s.n,
    ]


def _print_table(rows: list[list[Any]], as_json: bool) -> None:
    columns = [
        "run",
        "dataset",
        "learn",
        "filters",
        "width",
        "depth",
        "kernel",
        "PSNR dB",
        "scrambled dB",
        "train mean dB",
        "test images",
    ]
    print_result(table("un-shuffling: test PSNR and baselines", columns, rows), as_json)
