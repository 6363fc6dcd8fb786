"""``spatialmix train``: one run, or the points of a YAML recipe."""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..config.keys import TRAIN, describe_keys
from ..config.train import TrainConfig
from ..errors import ConfigError
from ..store.lock import RunDirBusy
from . import options as opt
from .output import StopRequest, console, emit_json, pct, print_error, print_result, table
from .progress import TrainProgress

if TYPE_CHECKING:
    from ..config.recipes import Point
    from ..training.loop import TrainingInterrupted, TrainResult

# The library (torch and all) is imported inside the functions that use it: --help needs none of it.


EXAMPLES = opt.examples(
    "spatialmix train --dataset synthetic --epochs 1 --learn chans --json",
    "spatialmix train --arch convmixer --width 256 --depth 8 --set mixup=0.2 --out runs/c256",
    "spatialmix train --recipe recipes/demo.yaml --list",
)  # the --help epilog


@opt.with_panels()
@opt.with_config_options(TRAIN)
def train_command(
    recipe: Annotated[
        Path | None,
        typer.Option("--recipe", "-r", help="YAML recipe: base config + sweep (or a run's config.yaml)."),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="A config file (a run's config.yaml): run it again as given, options on top.",
            show_default=False,
        ),
    ] = None,
    list_points: Annotated[
        bool, typer.Option("--list", help="Print the recipe's points as JSON lines; train nothing.")
    ] = False,
    index: Annotated[
        int | None, typer.Option("--index", help="Run only point I of the recipe (0-based).")
    ] = None,
    list_models_: Annotated[
        bool, typer.Option("--list-models", help="Print the registered models and exit.")
    ] = False,
    list_keys: Annotated[
        bool, typer.Option("--list-keys", help="Print every config key (type, default, help) and exit.")
    ] = False,
    set_: opt.Set = None,
    out: opt.Out = None,
    resume: opt.Resume = False,
    overwrite: opt.Overwrite = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the parameter report; train nothing.")
    ] = False,
    json_: opt.Json = False,
    debug: opt.Debug = False,
    **config: Any,
) -> None:
    """Train a model; frozen spatial mixing with --learn chans. Results: JSON on stdout with --json.
    Every config key is an option (the everyday ones listed here, all of them with --list-keys) or --set
    KEY=VALUE; --config RUN/config.yaml runs a saved config again."""
    from ..store.points import listing, resolve_points

    if list_models_:
        _print_models(json_)
        return
    if list_keys:
        _print_keys(json_)
        return
    overrides = opt.config_overrides(config, set_)
    base = _base(config_file, recipe)
    points = resolve_points(recipe, overrides, out, resume, index, base, check=not list_points)
    if list_points:
        for row in listing(points):
            emit_json(row)
        return
    if dry_run:
        _dry_run(points, json_)
        return
    train_points(points, resume=resume, overwrite=overwrite, as_json=json_)


def _base(config_file: Path | None, recipe: Path | None) -> TrainConfig | None:
    """The config ``--config`` names (a run's config.yaml), the base of the run; None without it."""
    from ..config.recipes import load_config

    if config_file is None:
        return None
    if recipe is not None:
        raise ConfigError("give --config or --recipe, not both")
    return load_config(config_file)


def _print_keys(as_json: bool) -> None:
    rows = describe_keys(TrainConfig)
    if as_json:
        for row in rows:
            emit_json(row)
    else:
        print_result(table("config keys (--KEY VALUE, --set KEY=VALUE, or a recipe)", list(rows[0]),
                           [list(r.values()) for r in rows]), as_json=False)  # fmt: skip


def _print_models(as_json: bool) -> None:
    from ..models import list_models

    names = list_models()
    if as_json:
        for name in names:
            emit_json({"model": name})
    else:  # the list is the result: stdout, one name a line, as with --json
        typer.echo("\n".join(names))
    # timm's zoo is too large to list here (and listing it would import timm): a pointer on stderr
    console().print(
        "and timm:NAME for any timm model (python -c \"import timm; print(timm.list_models('*convnext*'))\")"
    )


def _dry_run(points: list[Point], as_json: bool) -> None:
    """Parameter counts of each point's model, built on the meta device (shapes only, no memory: a
    65536-wide model with 1024-tap kernels is counted in milliseconds), and the memory training would need
    by the rule of :mod:`spatialmix_cli.training.memory`."""
    import torch

    from ..data.budget import format_bytes
    from ..data.info import planning_info
    from ..layers import layer_counts, param_report
    from ..models import create_model
    from ..training.memory import training_estimate

    for point in points:
        cfg = point.config
        with torch.device("meta"):
            # a folder dataset's class count from its train/ sub-folders, before any image is read
            model = create_model(cfg.arch, **cfg.model_kwargs(planning_info(cfg.dataset, cfg.data_dir)))
        report, layers = param_report(model), layer_counts(model)
        memory = training_estimate(cfg).nbytes
        rows = [
            [kind, layers.get(kind, 0), r["trainable"], r["frozen"]] for kind, r in report["by_type"].items()
        ]
        rows.append(["total", sum(layers.values()), report["params_trainable"], report["params_frozen"]])
        title = (f"{cfg.arch} learn={cfg.learn} filters={cfg.filters} ({point.name or 'single run'}); "
                 f"training needs about {format_bytes(memory)}")  # fmt: skip
        columns = ["role", "layers", "trainable", "frozen"]
        print_result(table(title, columns, rows), as_json)  # the report: stdout
        if as_json:
            emit_json({"run_dir": str(point.run_dir), "arch": cfg.arch, "learn": cfg.learn, **report,
                       "layers": dict(layers), "memory_bytes": memory, "config": cfg.to_dict()})  # fmt: skip


def train_points(
    points: list[Point],
    *,
    resume: bool,
    overwrite: bool,
    as_json: bool,
    summary: bool = True,
    again: str | None = None,
) -> list[tuple[Point, TrainResult]]:
    """Train each point (finished ones are skipped) with a progress bar; JSON lines with ``as_json``.
    Returns (point, result) for every point that is finished now; points another worker holds are left
    out. On an interrupt: the command that resumes the run, then ``again`` (how to go on with the calling
    command; by default, for a sweep, `spatialmix train`'s)."""
    from ..training.distributed import is_main
    from ..training.loop import TrainingInterrupted, train

    # a sweep's command without --resume stops at its unfinished point
    if again is None and len(points) > 1:
        again = "or continue the whole sweep: the same command again, with --resume"
    err = console()
    results: list[TrainResult] = []
    trained: list[Point] = []
    if not is_main():  # under torchrun, ranks other than 0 train silently
        err = Console(file=io.StringIO())
        as_json = summary = False
    with StopRequest() as stop:
        for n, point in enumerate(points, 1):
            label = point.name or point.config.arch
            if len(points) > 1:
                label = f"[{n}/{len(points)}] {label}"
            try:
                with TrainProgress(err, label, point.config.epochs) as progress:
                    result = train(point.config, point.run_dir, resume=resume, overwrite=overwrite,
                                   callbacks=progress, should_stop=stop)  # fmt: skip
            except TrainingInterrupted as exc:
                if is_main():  # under torchrun every rank stops at the same step: rank 0 says so, once
                    report_interrupt(exc, as_json=as_json, again=again)
                raise typer.Exit(stop.exit_code) from None
            except RunDirBusy as exc:  # another worker of the sweep has this point: go on with the next
                err.print(f"{label}: {exc}")
                if as_json:
                    emit_json({"run_dir": str(point.run_dir), "skipped": True, "busy": True})
                continue
            if result.skipped:
                err.print(f"{label}: already finished in {result.run_dir}; skipped")
            results.append(result)
            trained.append(point)
            if as_json:
                emit_json(result.to_dict())
    if summary and results:
        _print_summary(points, trained, results, as_json)
    return list(zip(trained, results, strict=True))


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in ``run_dir`` exactly where it stopped: its config is saved
    there (config.yaml), so ``--out`` and ``--resume`` are all it needs, whether the run was a single one
    or a point of a recipe (or of ``spatialmix unshuffle``), options and ``--set`` values included."""
    return f"spatialmix train --out {shlex.quote(str(run_dir))} --resume"


def report_interrupt(exc: TrainingInterrupted, *, as_json: bool, again: str | None = None) -> None:
    """Say where a run stopped and the command that resumes it, then ``again`` if given (stderr); with
    ``--json`` also one record of the interrupted run on stdout."""
    from ..training.distributed import from_env

    command = resume_command(exc.run_dir)
    print_error(f"interrupted: {exc}")
    launcher = " (launched with the same torchrun options)" if from_env() is not None else ""
    sys.stderr.write(f"resume with: {command}{launcher}\n")
    if again:
        sys.stderr.write(f"{again}\n")
    sys.stderr.flush()
    if as_json:
        emit_json({"run_dir": str(exc.run_dir), "status": "interrupted", "epoch": exc.epoch, "step": exc.step,
                   "resume": command})  # fmt: skip


def _print_summary(
    points: list[Point], trained: list[Point], results: list[TrainResult], as_json: bool
) -> None:
    """The final results table: the result itself, so stdout without ``--json`` (stderr with it)."""
    rows = [
        [
            p.name or r.run_dir,
            r.arch,
            r.learn,
            r.filters,
            pct(r.test_acc) if r.test_psnr is None else f"{r.test_psnr:.2f} dB",
            r.seconds,
            r.params_trainable,
            r.params_frozen,
        ]
        for p, r in zip(trained, results, strict=True)
    ]
    columns = ["run", "arch", "learn", "filters", "test acc/PSNR", "seconds", "trainable", "frozen"]
    title = f"results in {points[0].run_dir.parent}" if len(points) > 1 else "result"
    print_result(table(title, columns, rows), as_json)


def with_weights(finished: list[tuple[Point, TrainResult]], kept: str) -> list[tuple[Point, TrainResult]]:
    """The finished points whose run kept its weights; each run record without them (a committed
    reproduction) is named on stderr, its ``kept`` results left as they are."""
    from ..store.rundir import has_weights

    for point, _ in finished:
        if not has_weights(point.run_dir):
            console().print(f"{point.run_dir}: a run record without weights; its {kept} are kept as they are")
    return [(p, r) for p, r in finished if has_weights(p.run_dir)]
