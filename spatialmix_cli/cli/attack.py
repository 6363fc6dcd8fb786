"""``spatialmix attack``: robust accuracy of checkpoints (or of a recipe's runs) with masking checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..attacks.checks import CHECKS
from ..config.attack import AttackPlan
from ..config.keys import ATTACK_COMMAND
from ..config.runfiles import MODEL_FILE
from ..errors import ConfigError
from ..store.targets import STDIN, expand_targets
from ..training.callbacks import AttackCallbacks
from . import options as opt
from .output import console, emit_json, pct, print_result, table
from .progress import PassProgress
from .train import PointPrinter, stop_request

if TYPE_CHECKING:
    from ..attacks import AttackResult
    from ..store.checkpoint import Checkpoint

# The library (torch and all) is imported inside the functions that use it: --help needs none of it.

Checkpoints = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Checkpoints (.safetensors) or run directories; - reads them (or `train --json` "
        "records) from stdin.",
        show_default=False,
        metavar="TARGETS",
    ),
]
Recipe = Annotated[
    Path | None,
    typer.Option(
        "--recipe", "-r", help="Train the recipe's missing runs, then attack them all (its 'attack' section)."
    ),
]
Source = Annotated[Path | None, typer.Option(help="Also run a transfer attack crafted on this checkpoint.")]
RecipeOut = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="With --recipe: the root of its run directories (default: its out:)."),
]
RecipeSet = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="With --recipe: any config key of its runs, --set KEY=VALUE (repeatable; `spatialmix train "
        "--list-keys`); every key is also an option, as in `spatialmix train` (--epochs 1).",
        metavar="KEY=VALUE",
    ),
]
Save = Annotated[
    bool, typer.Option("--save/--no-save", help="Append results to attacks.jsonl in each run directory.")
]


# after an interrupted training of a recipe's run: how to go on
AGAIN = "then attack: the same `spatialmix attack` command again (it resumes unfinished runs)"

EXAMPLES = opt.examples(
    "spatialmix attack runs/c256 --method fgsm,pgd --eps 1/255,2/255",
    "spatialmix attack runs/c256 --method autoattack --n 500 --json",
    "spatialmix attack --recipe recipes/fig6.yaml --list",
)  # the --help epilog


@opt.with_panels()
@opt.with_config_options(ATTACK_COMMAND)
@opt.with_key_options(AttackPlan, before="source")
def attack_command(
    checkpoints: Checkpoints = None,
    recipe: Recipe = None,
    list_points: opt.ListPoints = False,
    index: opt.Index = None,
    set_: RecipeSet = None,
    source: Source = None,
    data_dir: opt.DataDir = None,
    device: opt.Device = None,
    out: RecipeOut = None,
    resume: opt.Resume = False,
    overwrite: opt.Overwrite = False,
    save: Save = True,
    json_: opt.Json = False,
    debug: opt.Debug = False,
    **config: Any,
) -> None:
    """Robust accuracy under FGSM / PGD / AutoAttack, with checks that the robustness is not masking.
    With --recipe, the training options of `spatialmix train` change the recipe's runs (--epochs 1, --set
    subset=256, --overwrite, ...; its --seed and --batch-size are the attack's: --set seed=N for training)."""
    from ..commands.attack import AttacksInterrupted, attack, attack_listing
    from ..commands.train import Training

    overrides = opt.take_keys(config, AttackPlan)  # the plan's options; the rest train a recipe's runs
    if checkpoints and any(str(p) == STDIN for p in checkpoints):  # `train --json | spatialmix attack -`
        checkpoints = expand_targets(checkpoints, sys.stdin)
    given_keys = opt.config_overrides(config, set_)
    training = _training(recipe, given_keys, resume, overwrite, data_dir=data_dir, device=device)
    if list_points:
        for row in attack_listing(checkpoints or [], recipe, out, index, config=training):
            emit_json(row)
        return
    with stop_request() as stop:  # a recipe's missing runs are trained first (progress on stderr)
        how = Training(
            overwrite=overwrite, callbacks=PointPrinter(False, summary=False, again=AGAIN), stop=stop
        )
        try:
            results = attack(
                checkpoints or [],
                overrides,
                recipe=recipe,
                out=out,
                index=index,
                source=source,
                data_dir=data_dir,
                device=device or "auto",
                save=save,
                callbacks=AttackPrinter(json_),
                config=training,
                training=how,
                stop=stop,
            )
        except AttacksInterrupted as exc:  # the one line saying how to go on (stderr)
            console().print(str(exc), markup=False)
            raise typer.Exit(stop.exit_code) from None
    _print_table(results, json_)


def _training(
    recipe: Path | None,
    overrides: dict[str, Any],
    resume: bool,
    overwrite: bool,
    *,
    data_dir: str | None,
    device: str | None,
) -> dict[str, Any]:
    """The config keys the recipe's runs are trained with (the command line's; --data-dir and --device
    serve training and attacks alike); refused without a recipe, which is what they change."""
    if recipe is None:
        asked = [f"--{k.replace('_', '-')}" for k in overrides] + ["--resume"] * resume
        asked += ["--overwrite"] * overwrite
        if asked:
            raise ConfigError(f"{asked[0]} goes with --recipe (it changes the training of the recipe's runs)")
        return overrides
    runtime = {"data_dir": data_dir, "device": device}
    return {**{k: v for k, v in runtime.items() if v is not None}, **overrides}


class AttackPrinter(AttackCallbacks):
    """A progress bar over each attack pass, JSON lines with ``--json``, and each checkpoint's checks."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.bar = PassProgress(console())

    def on_begin(self) -> None:
        self.bar.__enter__()

    def on_end(self) -> None:
        self.bar.__exit__(None, None, None)

    def on_checkpoint(self, ckpt: Checkpoint) -> None:
        self.bar.prefix = _short(ckpt)

    def on_batch(self, label: str, done: int, total: int) -> None:
        self.bar(label, done, total)

    def on_results(self, ckpt: Checkpoint, results: list[AttackResult]) -> None:
        for result in results:
            if self.as_json:
                emit_json(result.to_dict())
        _print_flags(ckpt, results)


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


def _print_table(results: list[AttackResult], as_json: bool) -> None:
    """The robust-accuracy table: stdout without ``--json``, stderr with it."""
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
        row = [
            name,
            r.learn,
            _describe_filters(r),
            r.adv_training,
            r.attack,
            r.eps_label,
            pct(r.clean_acc),
            pct(r.robust_acc),
        ]
        row += [pct(r.transfer_acc)] if transfer else []
        row += [", ".join(r.flags) or ("ok" if r.checks else "-")]
        rows.append(row)
    n, seed = results[0].n, results[0].seed
    print_result(table(f"robust accuracy ({n} test images, seed {seed})", columns, rows), as_json)
