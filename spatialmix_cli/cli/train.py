"""``spatialmix train``: one run, or the points of a YAML recipe."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config.keys import TRAIN, describe_keys
from ..config.train import TrainConfig
from ..errors import ConfigError
from ..training.callbacks import PointCallbacks
from ..training.stopping import StopRequest
from . import options as opt
from .output import console, emit_json, pct, print_error, print_result, table
from .progress import TrainProgress

if TYPE_CHECKING:
    from ..commands.train import DryRun
    from ..config.recipes import Point
    from ..training.state import TrainResult
    from ..training.stopping import TrainingInterrupted

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
    _train(points, resume=resume, overwrite=overwrite, as_json=json_, sweep=recipe is not None)


def _train(points: list[Point], *, resume: bool, overwrite: bool, as_json: bool, sweep: bool) -> None:
    """Train ``points``; a recipe's (``sweep``) skip a point another worker holds, a single run fails."""
    from ..commands.train import train_points

    # a sweep's command without --resume stops at its unfinished point
    again = "or continue the whole sweep: the same command again, with --resume" if len(points) > 1 else None
    printer = PointPrinter(as_json, again=again)
    with stop_request() as stop:
        train_points(points, resume=resume, overwrite=overwrite, callbacks=printer, stop=stop, sweep=sweep)


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
        print_result(
            table(
                "config keys (--KEY VALUE, --set KEY=VALUE, or a recipe)",
                list(rows[0]),
                [list(r.values()) for r in rows],
            ),
            as_json=False,
        )


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
    """Each point's parameter report (``commands.train.dry_run``), as soon as it is counted."""
    from ..commands.train import dry_run

    for found in dry_run(points):
        _print_dry_run(found, as_json)


def _print_dry_run(found: DryRun, as_json: bool) -> None:
    """One point's parameter report: a table (stdout), and with ``--json`` one record."""
    from ..data.budget import format_bytes

    cfg, report, layers = found.point.config, found.report, found.layers
    rows = [[kind, layers.get(kind, 0), r["trainable"], r["frozen"]] for kind, r in report["by_type"].items()]
    rows.append(["total", sum(layers.values()), report["params_trainable"], report["params_frozen"]])
    title = (
        f"{cfg.arch} learn={cfg.learn} filters={cfg.filters} ({found.point.name or 'single run'}); "
        f"training needs about {format_bytes(found.memory_bytes)}"
    )
    columns = ["role", "layers", "trainable", "frozen"]
    print_result(table(title, columns, rows), as_json)  # the report: stdout
    if as_json:
        emit_json(
            {
                "run_dir": str(found.point.run_dir),
                "arch": cfg.arch,
                "learn": cfg.learn,
                **report,
                "layers": layers,
                "memory_bytes": found.memory_bytes,
                "config": cfg.to_dict(),
            }
        )


@contextlib.contextmanager
def stop_request() -> Iterator[StopRequest]:
    """The stop request the library's training holds while it trains (the first SIGINT/SIGTERM stops the
    run cleanly at its next step); a run stopped by it ends the command with the signal's exit code."""
    from ..training.stopping import TrainingInterrupted

    stop = StopRequest()
    try:
        yield stop
    except TrainingInterrupted:
        raise typer.Exit(stop.exit_code) from None


class PointPrinter(PointCallbacks):
    """A progress bar per point (stderr), a line for one skipped, its result as a JSON line with ``--json``,
    the results table at the end (``summary``); on an interrupt, the command that resumes the run, then
    ``again`` (how to go on with the calling command)."""

    def __init__(self, as_json: bool, *, summary: bool = True, again: str | None = None) -> None:
        self.as_json, self.summary, self.again = as_json, summary, again
        self.err = console()

    def progress(self, label: str, epochs: int) -> TrainProgress:
        return TrainProgress(self.err, label, epochs)

    def on_busy(self, label: str, run_dir: Path, reason: str) -> None:
        self.err.print(f"{label}: {reason}")
        if self.as_json:
            emit_json({"run_dir": str(run_dir), "skipped": True, "busy": True})

    def on_result(self, label: str, result: TrainResult) -> None:
        if result.skipped:
            self.err.print(f"{label}: already finished in {result.run_dir}; skipped")
        if self.as_json:
            emit_json(result.to_dict())

    def on_interrupt(self, stopped: TrainingInterrupted) -> None:
        report_interrupt(stopped, as_json=self.as_json, again=self.again)

    def on_end(self, points: list[Point], finished: list[tuple[Point, TrainResult]]) -> None:
        if self.summary and finished:
            _print_summary(points, finished, self.as_json)

    def on_note(self, text: str) -> None:
        self.err.print(text)


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
        emit_json(
            {
                "run_dir": str(exc.run_dir),
                "status": "interrupted",
                "epoch": exc.epoch,
                "step": exc.step,
                "resume": command,
            }
        )


def _print_summary(points: list[Point], finished: list[tuple[Point, TrainResult]], as_json: bool) -> None:
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
        for p, r in finished
    ]
    columns = ["run", "arch", "learn", "filters", "test acc/PSNR", "seconds", "trainable", "frozen"]
    title = f"results in {points[0].run_dir.parent}" if len(points) > 1 else "result"
    print_result(table(title, columns, rows), as_json)
