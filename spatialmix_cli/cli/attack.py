"""``spatialmix attack``: robust accuracy of checkpoints (or of a recipe's runs) with masking checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..attacks import (
    CHECKS,
    METHODS,
    PGD_VARIANTS,
    AttackPlan,
    AttackResult,
    attack_checkpoint,
    load_sample,
    record,
)
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import ConfigError
from ..recipes import load_recipe
from ..rundir import ATTACKS_FILE, CONFIG_FILE, MODEL_FILE, read_config
from ..safefiles import check_target
from ..training import resolve_device
from . import options as opt
from .output import console, emit_json, pct, table
from .progress import PassProgress
from .train import train_points, with_weights


def attack_command(
    checkpoints: Annotated[
        list[Path] | None,
        typer.Argument(help="Checkpoints (.safetensors) or run directories.", show_default=False),
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            "-r",
            help="Train the recipe's missing runs, then attack them all (its 'attack' section).",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help=f"{' | '.join(METHODS)}, or a list: fgsm,pgd.", show_default="fgsm"),
    ] = None,
    eps: Annotated[
        str | None,
        typer.Option(help="L∞ radius in pixel units; a list sweeps: 1/255,2/255.", show_default="1/255"),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="PGD steps.", show_default="2")] = None,
    pgd_variant: Annotated[
        str | None,
        typer.Option(
            help="PGD's step size and start: "
            + "; ".join(f"{k}: {v}" for k, v in PGD_VARIANTS.items())
            + ".",
            show_default="madry",
        ),
    ] = None,
    alpha: Annotated[
        str | None, typer.Option(help="PGD step size in pixel units (overrides the variant's).")
    ] = None,
    random_start: Annotated[
        bool | None,
        typer.Option(
            "--random-start/--no-random-start",
            help="PGD uniform random start (overrides the variant's).",
            show_default="the variant's",
        ),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option("--n", help="Test images (the same for every checkpoint).", show_default="1000"),
    ] = None,
    batch_size: opt.BatchSize = None,
    seed: Annotated[
        int | None, typer.Option(help="Picks the sample; seeds the attacks.", show_default="0")
    ] = None,
    source: Annotated[
        Path | None, typer.Option(help="Also run a transfer attack crafted on this checkpoint.")
    ] = None,
    checks: Annotated[
        bool | None,
        typer.Option(
            "--checks/--no-checks", help="Gradient-masking checks (about 4 extra passes).", show_default="on"
        ),
    ] = None,
    large_eps: Annotated[
        str | None, typer.Option(help="ε of the 'accuracy → chance' check.", show_default="0.5")
    ] = None,
    data_dir: opt.DataDir = None,
    device: opt.Device = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="With --recipe: the root of its run directories (default: its out:)."
        ),
    ] = None,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Append results to attacks.jsonl in each run directory.")
    ] = True,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Robust accuracy under FGSM / PGD / AutoAttack, with checks that the robustness is not masking."""
    given = {
        "method": method, "eps": eps, "steps": steps, "pgd_variant": pgd_variant, "alpha": alpha,
        "random_start": random_start, "n": n,
        "batch_size": batch_size, "seed": seed, "checks": checks, "large_eps": large_eps,
    }  # fmt: skip
    overrides = {k: v for k, v in given.items() if v is not None}
    paths, plan = _targets(checkpoints or [], recipe, overrides, json_, out)
    dev = resolve_device(device or "auto")
    source = _as_checkpoint(source) if source is not None else None
    results = run_attacks(paths, plan, source=source, data_dir=data_dir, device=dev, as_json=json_, save=save)
    _print_table(results)


def _targets(
    checkpoints: list[Path], recipe: Path | None, overrides: dict[str, Any], as_json: bool, out: Path | None
) -> tuple[list[Path], AttackPlan]:
    if out is not None and recipe is None:
        raise ConfigError("--out goes with --recipe (the root of its run directories)")
    if recipe is not None:
        if checkpoints:
            raise ConfigError("give checkpoints or --recipe, not both")
        loaded = load_recipe(recipe)
        points = loaded.points(out=out)
        finished = train_points(points, resume=True, overwrite=False, as_json=False, summary=False)
        plan = (loaded.attack or AttackPlan()).updated(overrides, "option")
        # points another worker holds wait; records without weights cannot be attacked again
        return [p.run_dir / MODEL_FILE for p, _ in with_weights(finished, "attack results")], plan
    if not checkpoints:
        raise ConfigError("give at least one checkpoint (or a run directory), or --recipe")
    return [_as_checkpoint(p) for p in checkpoints], AttackPlan().updated(overrides, "option")


def _as_checkpoint(path: Path) -> Path:
    """A run directory stands for its final ``model.safetensors``."""
    return path / MODEL_FILE if os.path.isdir(path) else path


def _classifier(ckpt: Checkpoint) -> Checkpoint:
    task = ckpt.meta.get("config", {}).get("task", "classify")
    if task != "classify":
        raise ConfigError(f"{ckpt.path} is a '{task}' model; attacks need a classifier checkpoint")
    return ckpt


def run_attacks(
    paths: list[Path],
    plan: AttackPlan,
    *,
    source: Path | None,
    data_dir: str | None,
    device: Any,
    as_json: bool,
    save: bool,
) -> list[AttackResult]:
    """Load every checkpoint first (so a bad path fails before any work), then attack them in turn."""
    ckpts = [_classifier(load_checkpoint(p, device)) for p in paths]
    src = _classifier(load_checkpoint(source, device)) if source is not None else None
    if save:  # an attacks.jsonl that is a link is refused now, not after the attacks ran
        for ckpt in ckpts:
            if _records_here(ckpt):
                check_target(ckpt.path.parent / ATTACKS_FILE)
    samples: dict[str, Any] = {}
    err, results = console(), []
    with PassProgress(err) as bar:
        for ckpt in ckpts:
            name = ckpt.info.name
            if name not in samples:
                samples[name] = _sample(ckpt, plan, data_dir, device)
            bar.prefix = _short(ckpt)
            found = attack_checkpoint(ckpt, samples[name], plan, source=src, on_batch=bar)
            if save and _records_here(ckpt):
                record(ckpt.path.parent, found)
            for result in found:
                if as_json:
                    emit_json(result.to_dict())
            results.extend(found)
            _print_flags(ckpt, found)
    return results


def _records_here(ckpt: Checkpoint) -> bool:
    """Results are appended next to a checkpoint that sits in a run directory."""
    return (ckpt.path.parent / CONFIG_FILE).is_file()


def _sample(ckpt: Checkpoint, plan: AttackPlan, data_dir: str | None, device: Any) -> Any:
    """The test sample. Where data is written or downloaded is the user's --data-dir (or the defaults);
    the data_dir a checkpoint or its run stores is only a folder to look in, and its ``download: false``
    can turn a download off, never on (a file decides nothing about what is written where)."""
    config = read_config(ckpt.path.parent) if _records_here(ckpt) else None
    saved = ckpt.meta.get("config", {})
    hints = [h for h in (saved.get("data_dir"), config.data_dir if config else None) if isinstance(h, str)]
    return load_sample(
        ckpt.info, n=plan.n, seed=plan.seed, data_dir=data_dir, hints=hints,
        download=saved.get("download") is not False, image_size=ckpt.info.image_size, device=device,
    )  # fmt: skip


def _short(ckpt: Checkpoint) -> str:
    path = ckpt.path
    return path.parent.name if path.name == MODEL_FILE else path.name


def _describe_filters(r: AttackResult) -> str:
    return f"smooth σ={r.smooth_sigma:g}" if r.smooth_sigma is not None else r.filters


def _print_flags(ckpt: Checkpoint, found: list[AttackResult]) -> None:
    if not found or not found[0].checks:
        return
    failed = [c for c in found[0].checks.values() if not c["passed"]]
    err = console()
    if failed:
        for c in failed:
            err.print(f"[yellow]warning[/]: {_short(ckpt)} fails '{CHECKS[c['name']]}': {c['detail']}")
    else:
        err.print(f"{_short(ckpt)}: all {len(found[0].checks)} masking checks passed")


def _print_table(results: list[AttackResult]) -> None:
    if not results:
        return
    transfer = any(r.transfer_acc is not None for r in results)
    columns = ["checkpoint", "learn", "filters", "adv train", "attack", "ε", "clean", "robust"]
    columns += ["transfer"] if transfer else []
    columns += ["flags"]
    rows = []
    for r in results:
        name = (
            Path(r.checkpoint).parent.name if r.checkpoint.endswith(MODEL_FILE) else Path(r.checkpoint).name
        )
        row = [name, r.learn, _describe_filters(r), r.adv_training, r.attack, r.eps_label, pct(r.clean_acc),
               pct(r.robust_acc)]  # fmt: skip
        row += [pct(r.transfer_acc)] if transfer else []
        row += [", ".join(r.flags) or ("ok" if r.checks else "-")]
        rows.append(row)
    n, seed = results[0].n, results[0].seed
    console().print(table(f"robust accuracy ({n} test images, seed {seed})", columns, rows))
