"""``spatialmix unshuffle``: train un-shuffle ConvMixers (one run or a recipe) or re-evaluate checkpoints;
PSNR with its baselines, and the reconstruction grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..checkpoint import Checkpoint, load_checkpoint
from ..config import UNSHUFFLE_ARCH, TrainConfig
from ..errors import ConfigError
from ..recipes import parse_set
from ..rundir import GRID_FILE, MODEL_FILE
from ..safefiles import check_target
from ..unshuffle.grid import save_grid
from ..unshuffle.scores import Examples, UnshuffleScores, checkpoint_config, save_scores, score_checkpoint
from . import options as opt
from .output import console, emit_json, table
from .train import resolve_points, train_points, with_weights

_CONFIG_OPTIONS = (
    "dataset", "learn", "filters", "smooth_sigma", "width", "depth", "kernel", "perm_seed", "epochs",
    "batch_size", "lr", "subset", "test_subset", "image_size", "seed", "device", "data_dir", "download",
)  # fmt: skip


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
    index: Annotated[int | None, typer.Option("--index", help="Run only point I of the recipe.")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="mnist | fashion-mnist | cifar10 | cifar100 | synthetic.")
    ] = None,
    learn: Annotated[str | None, typer.Option(help="full | chans | space.")] = None,
    filters: Annotated[
        str | None, typer.Option(help="Initial depthwise bank: random | same | box | identity | smooth.")
    ] = None,
    smooth_sigma: Annotated[float | None, typer.Option(help="Gaussian std for --filters smooth.")] = None,
    width: Annotated[int | None, typer.Option(help="ConvMixer width (default 128).")] = None,
    depth: Annotated[int | None, typer.Option(help="ConvMixer blocks (default 8).")] = None,
    kernel: Annotated[int | None, typer.Option(help="Depthwise kernel size (default 7).")] = None,
    perm_seed: Annotated[
        int | None, typer.Option(help="Seed of the fixed pixel permutation (default 0).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    batch_size: opt.BatchSize = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    subset: Annotated[int | None, typer.Option(help="Train on N images.")] = None,
    test_subset: Annotated[int | None, typer.Option(help="Evaluate on N test images.")] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Resize images to S×S pixels first (e.g. 14 for CPU scale).")
    ] = None,
    seed: opt.Seed = None,
    device: opt.Device = None,
    data_dir: opt.DataDir = None,
    download: Annotated[
        bool | None,
        typer.Option(
            "--download/--no-download", help="Allow downloading a missing dataset.", show_default=False
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Any config key: --set KEY=VALUE (repeatable).")
    ] = None,
    out: opt.Out = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the unfinished run in --out.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the run files in --out.")] = False,
    grid: Annotated[
        Path | None,
        typer.Option(help=f"Where to write the PNG grid (default: {GRID_FILE} in the run directory)."),
    ] = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Restore pixel-permuted images with a patch-1 ConvMixer; test PSNR next to two baselines."""
    given = {k: v for k, v in locals().items() if k in _CONFIG_OPTIONS and v is not None}
    if grid is not None:
        check_target(grid)  # a --grid that cannot be written fails now, not after the training
    if eval_:
        training = {k for k in given if k not in ("data_dir", "download")}
        if recipe is not None or training or set_ or out is not None:
            raise ConfigError(
                "--eval re-evaluates checkpoints; it takes no training options (only --grid, --data-dir, --download)"
            )
        _evaluate(eval_, grid, data_dir, download is not False, json_)
        return
    overrides = {**given, **parse_set(set_)}
    base = TrainConfig(task="unshuffle", arch=UNSHUFFLE_ARCH)
    points = resolve_points(recipe, overrides, out, resume, index, base=base)
    wrong = [p for p in points if p.config.task != "unshuffle"]
    if wrong:
        raise ConfigError(
            f"{recipe} is not an un-shuffle recipe (its base needs task: unshuffle and "
            f"arch: {UNSHUFFLE_ARCH}); train it with `spatialmix train --recipe`"
        )
    if grid is not None and len(points) > 1:
        raise ConfigError("--grid names one file; a recipe writes one grid per run directory")
    finished = train_points(points, resume=resume, overwrite=overwrite, as_json=False, summary=False)
    rows = []
    for point, result in with_weights(finished, "scores"):
        ckpt = load_checkpoint(result.checkpoint)
        scores, examples = score_checkpoint(ckpt, data_dir=point.config.data_dir)
        save_scores(point.run_dir, scores)
        path = _grid(grid or point.run_dir / GRID_FILE, examples, [(scores, examples)])
        rows.append(_row(point.name or str(point.run_dir), scores))
        if json_:
            emit_json({**scores.to_dict(), "run_dir": str(point.run_dir), "grid": str(path),
                       "seconds": result.seconds, "skipped": result.skipped})  # fmt: skip
    _print_table(rows)


def _load(path: Path) -> Checkpoint:
    return load_checkpoint(path / MODEL_FILE if os.path.isdir(path) else path)


def _evaluate(
    paths: list[Path], grid: Path | None, data_dir: str | None, download: bool, as_json: bool
) -> None:
    """Score checkpoints on data found where the user says (or the defaults): what a checkpoint stores
    about its data is a folder to look in, never one to write or download into."""
    ckpts = [_load(p) for p in paths]
    configs = [checkpoint_config(c) for c in ckpts]  # refuses classification checkpoints
    keys = {(c.dataset, c.perm_seed, c.test_subset) for c in configs}
    if len(keys) > 1:
        raise ConfigError(
            "checkpoints to compare in one grid need the same dataset, permutation seed and test set; "
            f"got {sorted(keys, key=str)}"
        )
    default = ckpts[0].path.parent / GRID_FILE if len(ckpts) == 1 else Path(GRID_FILE)
    check_target(grid or default)  # a link there is refused before the scoring, not after
    scored = [score_checkpoint(c, data_dir=data_dir, download=download) for c in ckpts]
    path = _grid(grid or default, scored[0][1], scored)
    rows = []
    for scores, _ in scored:
        rows.append(_row(scores.checkpoint, scores))
        if as_json:
            emit_json({**scores.to_dict(), "grid": str(path)})
    _print_table(rows)


def _grid(path: Path, first: Examples, scored: list[tuple[UnshuffleScores, Examples]]) -> Path:
    recons = [(f"{s.learn} ({s.psnr:.1f} dB)", e.restored) for s, e in scored]
    s = scored[0][0]
    title = f"{s.dataset}: un-shuffling, ConvMixer-{s.width}/{s.depth} k{s.kernel}, permutation seed {s.perm_seed}"
    written = save_grid(path, first.truth, first.scrambled, recons, title=title)
    console().print(f"reconstruction grid: {written}")
    return written


def _row(name: str, s: UnshuffleScores) -> list[Any]:
    return [name, s.dataset, s.learn, s.filters, s.width, s.depth, s.kernel,
            f"{s.psnr:.2f}", f"{s.psnr_scrambled:.2f}", f"{s.psnr_mean:.2f}", s.n]  # fmt: skip


def _print_table(rows: list[list[Any]]) -> None:
    columns = ["run", "dataset", "learn", "filters", "width", "depth", "kernel",
               "PSNR dB", "scrambled dB", "train mean dB", "test images"]  # fmt: skip
    console().print(table("un-shuffling: test PSNR and baselines", columns, rows))
