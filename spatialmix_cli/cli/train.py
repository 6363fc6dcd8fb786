"""``spatialmix train``: one run, or the points of a YAML recipe."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..config import TrainConfig
from ..data.info import dataset_info
from ..distributed import is_main
from ..errors import ConfigError
from ..layers import param_report
from ..models import create_model, list_models
from ..recipes import Point, check_models, load_recipe, parse_set
from ..rundir import default_run_dir, has_weights, read_config, status
from ..runlock import RunDirBusy
from ..training import TrainingInterrupted, TrainResult, train
from . import options as opt
from .output import StopRequest, console, emit_json, pct, print_error, table
from .progress import TrainProgress

# CLI option name -> config key, for options that map one-to-one onto TrainConfig.
_CONFIG_OPTIONS = (
    "arch", "learn", "filters", "smooth_sigma", "width", "depth", "kernel", "patch", "depth_multiplier",
    "dataset", "data_dir", "subset", "test_subset", "epochs", "batch_size", "lr", "weight_decay", "optimizer",
    "schedule", "label_smoothing", "grad_clip", "seed", "device", "channels_last", "compile", "cpu_bf16", "sync_bn",
    "download",
    "adv", "adv_eps", "adv_steps", "adv_alpha",
)  # fmt: skip


def train_command(
    recipe: Annotated[
        Path | None, typer.Option("--recipe", "-r", help="YAML recipe: base config + sweep.")
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
    arch: Annotated[
        str | None, typer.Option(help="Model name from the registry (see --list-models).")
    ] = None,
    learn: Annotated[
        str | None, typer.Option(help="full | chans (spatial frozen) | space (channel mixing frozen).")
    ] = None,
    filters: Annotated[
        str | None, typer.Option(help="Initial depthwise bank: random | same | box | identity | smooth.")
    ] = None,
    smooth_sigma: Annotated[
        float | None, typer.Option(help="Gaussian std (taps) for --filters smooth.")
    ] = None,
    width: Annotated[int | None, typer.Option(help="ConvMixer width / ResNet base width.")] = None,
    depth: Annotated[int | None, typer.Option(help="ConvMixer blocks / ResNet layers (6n+2, 8n+2).")] = None,
    kernel: Annotated[int | None, typer.Option(help="Depthwise kernel size.")] = None,
    patch: Annotated[int | None, typer.Option(help="ConvMixer patch size.")] = None,
    depth_multiplier: Annotated[
        int | None, typer.Option(help="Separable ResNet depth multiplier (default 9).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="mnist | fashion-mnist | cifar10 | cifar100 | imagenet | synthetic.")
    ] = None,
    data_dir: opt.DataDir = None,
    subset: Annotated[
        int | None, typer.Option(help="Train on the first N images of a fixed shuffle.")
    ] = None,
    test_subset: Annotated[int | None, typer.Option(help="Evaluate on N test images.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    batch_size: opt.BatchSize = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay (not on norms/biases).")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw | sgd.")] = None,
    schedule: Annotated[str | None, typer.Option(help="onecycle | cosine | constant.")] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing in [0, 1).")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Clip the global gradient norm.")] = None,
    adv: Annotated[
        str | None, typer.Option(help="Adversarial training: none | fgsm | pgd (examples made on the fly).")
    ] = None,
    adv_eps: Annotated[
        str | None, typer.Option(help="Adversarial-training ε in pixel units, e.g. 1/255.")
    ] = None,
    adv_steps: Annotated[int | None, typer.Option(help="PGD steps for --adv pgd.")] = None,
    adv_alpha: Annotated[
        str | None, typer.Option(help="PGD step size for --adv pgd (default 2.5 ε / steps).")
    ] = None,
    seed: opt.Seed = None,
    device: opt.Device = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Channels-last memory format (default: on).",
            show_default=False,
        ),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the model (default: auto, on CUDA for runs >10 min eager; never on CPU).",
            show_default=False,
        ),
    ] = None,
    cpu_bf16: Annotated[
        bool | None,
        typer.Option(
            "--cpu-bf16/--no-cpu-bf16",
            help="bf16 autocast on a CPU too (off by default; needs native bf16 units: AVX512-BF16, AMX, Arm BF16).",
            show_default=False,
        ),
    ] = None,
    sync_bn: Annotated[
        bool | None,
        typer.Option(
            "--sync-bn/--no-sync-bn",
            help="Under torchrun on GPUs: BatchNorm statistics over the global batch.",
            show_default=False,
        ),
    ] = None,
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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the parameter report; train nothing.")
    ] = False,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Train a model; frozen spatial mixing with --learn chans. Results: JSON on stdout with --json."""
    given = {k: v for k, v in locals().items() if k in _CONFIG_OPTIONS and v is not None}
    if list_models_:
        _print_models(json_)
        return
    overrides = {**given, **parse_set(set_)}
    points = resolve_points(recipe, overrides, out, resume, index, check=not list_points)
    if list_points:
        for point in points:
            emit_json({**point.to_dict(), "status": status(point.run_dir)})
        return
    if dry_run:
        _dry_run(points, json_)
        return
    train_points(points, resume=resume, overwrite=overwrite, as_json=json_)


def resolve_points(
    recipe: Path | None,
    overrides: dict[str, Any],
    out: Path | None,
    resume: bool,
    index: int | None,
    base: TrainConfig | None = None,
    *,
    check: bool = True,
) -> list[Point]:
    """The runs a command is asked for: a recipe's points (or point ``index``), or one run of ``base``
    (default: the config defaults) with ``overrides``; ``--resume`` takes the config saved in ``out``.
    ``check``: build the model of each point returned on the meta device (only those: ``--index`` checks
    its point, ``--list`` none)."""
    if recipe is not None:
        points = load_recipe(recipe).points(overrides, out, model=False)
        if index is not None:
            if not 0 <= index < len(points):
                raise ConfigError(
                    f"--index {index} is out of range: {recipe} has {len(points)} points (0..{len(points) - 1})"
                )
            points = [points[index]]
        if check:
            check_models(points)
        return points
    if index is not None:
        raise ConfigError("--index needs --recipe")
    if resume and out is None:
        raise ConfigError("--resume needs --out: the run directory to continue")
    saved = read_config(out) if (resume and out is not None) else None
    cfg = (saved or base or TrainConfig()).updated(overrides, "option")
    return [Point(0, "", {}, cfg, out or default_run_dir(cfg))]


def _print_models(as_json: bool) -> None:
    names = list_models()
    if as_json:
        for name in names:
            emit_json({"model": name})
    else:
        console().print("\n".join(names))


def _dry_run(points: list[Point], as_json: bool) -> None:
    """Parameter counts of each point's model, built on the meta device (shapes only, no memory: a
    65536-wide model with 1024-tap kernels is counted in milliseconds), and the memory training would need
    by the rule of :mod:`spatialmix_cli.memory`."""
    import torch

    from ..memory import format_bytes, training_estimate

    for point in points:
        cfg = point.config
        with torch.device("meta"):
            model = create_model(cfg.arch, **cfg.model_kwargs(dataset_info(cfg.dataset)))
        report = param_report(model)
        memory = training_estimate(cfg).nbytes
        rows = [[kind, r["trainable"], r["frozen"]] for kind, r in report["by_type"].items()]
        rows.append(["total", report["params_trainable"], report["params_frozen"]])
        title = (f"{cfg.arch} learn={cfg.learn} filters={cfg.filters} ({point.name or 'single run'}); "
                 f"training needs about {format_bytes(memory)}")  # fmt: skip
        console().print(table(title, ["layer type", "trainable", "frozen"], rows))
        if as_json:
            emit_json({"run_dir": str(point.run_dir), "arch": cfg.arch, "learn": cfg.learn, **report,
                       "memory_bytes": memory})  # fmt: skip


def train_points(
    points: list[Point], *, resume: bool, overwrite: bool, as_json: bool, summary: bool = True
) -> list[tuple[Point, TrainResult]]:
    """Train each point (finished ones are skipped) with a progress bar; JSON lines with ``as_json``.
    Returns (point, result) for every point that is finished now; points another worker holds are left
    out."""
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
                print_error(f"interrupted: {exc}; continue with --resume (same --out)")
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
    if summary and rows:
        err.print(table(title, columns, rows))
    return list(zip(trained, results, strict=True))


def with_weights(finished: list[tuple[Point, TrainResult]], kept: str) -> list[tuple[Point, TrainResult]]:
    """The finished points whose run kept its weights; each run record without them (a committed
    reproduction) is named on stderr, its ``kept`` results left as they are."""
    for point, _ in finished:
        if not has_weights(point.run_dir):
            console().print(f"{point.run_dir}: a run record without weights; its {kept} are kept as they are")
    return [(p, r) for p, r in finished if has_weights(p.run_dir)]
