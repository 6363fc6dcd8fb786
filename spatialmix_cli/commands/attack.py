"""What ``spatialmix attack`` runs: its checkpoints (given, or a recipe's runs, trained first), one seeded
sample per dataset, every checkpoint attacked in turn, results appended to each run's attacks.jsonl."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..attacks.robustness import AttackResult, Sample, attack_checkpoint, load_sample, record
from ..config.attack import AttackPlan
from ..config.recipes import Point, Recipe, load_recipe, pick_point
from ..config.runfiles import ATTACKS_FILE, CONFIG_FILE, MODEL_FILE
from ..errors import ConfigError
from ..safefiles import check_target
from ..store.checkpoint import Checkpoint, checkpoint_file, load_checkpoint
from ..store.points import check_models, listing
from ..store.rundir import read_config
from ..training.callbacks import AttackCallbacks
from ..training.runtime import resolve_device
from ..training.stopping import StopRequest, signals_held
from .train import Training


class AttacksInterrupted(Exception):
    """A stop request (SIGINT/SIGTERM) ended :func:`run_attacks` between batches: the checkpoint being
    attacked then is dropped (none of its rows written), those before keep their rows whole."""

    def __init__(self, done: int, total: int, saved: bool) -> None:
        kept = "their rows are kept in attacks.jsonl" if saved else "their results were printed, not saved"
        again = (
            "nothing is left to attack"
            if done == total
            else f"to go on, run the same command again (it attacks all {total} anew; `spatialmix report` "
            "keeps the newest result of each attack)"
        )
        super().__init__(f"stopped after {done} of {total} checkpoint(s) ({kept}); {again}")
        self.done, self.total = done, total


class _Poll:
    """Raises :class:`AttacksInterrupted` where ``stop()`` turned true: before each checkpoint, between the
    batches of its attacks (``on_batch`` wraps the callbacks'), and once they are all done."""

    def __init__(self, stop: Callable[[], bool] | None, total: int, saved: bool) -> None:
        self.stop, self.total, self.saved, self.done = stop, total, saved, 0

    def check(self) -> None:
        if self.stop is not None and self.stop():
            raise AttacksInterrupted(self.done, self.total, self.saved)

    def wrap(self, on_batch: Callable[[str, int, int], None]) -> Callable[[str, int, int], None]:
        def polled(label: str, done: int, total: int) -> None:
            on_batch(label, done, total)
            self.check()

        return polled


def recipe_points(
    checkpoints: list[Path],
    recipe: Path | None,
    out: Path | None,
    index: int | None,
    config: dict[str, Any] | None = None,
) -> tuple[Recipe | None, list[Point]]:
    """The recipe (None without one) and its points asked for (``index``: only that one; models not yet
    checked; ``config``: keys given on the command line, on top of its points' own), after refusing
    options that go only with a recipe, or a recipe together with checkpoints."""
    if recipe is None:
        if out is not None:
            raise ConfigError("--out goes with --recipe (the root of its run directories)")
        if index is not None:
            raise ConfigError("--index needs --recipe")
        return None, []
    if checkpoints:
        raise ConfigError("give checkpoints or --recipe, not both")
    loaded = load_recipe(recipe)
    return loaded, pick_point(loaded.points(config, out=out), index, recipe)


def attack_listing(
    checkpoints: list[Path],
    recipe: Path | None,
    out: Path | None = None,
    index: int | None = None,
    *,
    config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``attack --recipe R --list``: the recipe's points (or point ``index``) and their training status,
    read-only (:func:`~spatialmix_cli.store.points.listing`); nothing is trained or attacked."""
    if recipe is None:
        raise ConfigError("--list needs --recipe")
    return listing(recipe_points(checkpoints, recipe, out, index, config)[1])


def attack_targets(
    checkpoints: list[Path],
    overrides: dict[str, Any],
    *,
    recipe: Path | None = None,
    out: Path | None = None,
    index: int | None = None,
    config: dict[str, Any] | None = None,
    training: Training | None = None,
) -> tuple[list[Path], AttackPlan]:
    """The checkpoint files to attack and the plan: ``checkpoints`` (a run directory stands for its
    weights) with the default plan, or a recipe's runs (all, or point ``index``; its missing runs trained
    first as ``training`` says, with the config keys ``config`` on top of its points') with its ``attack``
    section; ``overrides`` (option values) on top either way. Run records without weights cannot be
    attacked again."""
    loaded, points = recipe_points(checkpoints, recipe, out, index, config)
    if loaded is not None:
        plan = (loaded.attack or AttackPlan()).updated(overrides, "option")  # refused before training
        check_models(points)
        kept = (training or Training()).finished(points, "attack results")
        return [point.run_dir / MODEL_FILE for point, _ in kept], plan
    if not checkpoints:
        raise ConfigError("give at least one checkpoint (or a run directory), or --recipe")
    return [checkpoint_file(p) for p in checkpoints], AttackPlan().updated(overrides, "option")


def classifier(ckpt: Checkpoint) -> Checkpoint:
    """``ckpt`` if it is a classifier; attacks mean nothing on an un-shuffling model."""
    task = ckpt.meta.get("config", {}).get("task", "classify")
    if task != "classify":
        raise ConfigError(f"{ckpt.path} is a '{task}' model; attacks need a classifier checkpoint")
    return ckpt


def records_here(ckpt: Checkpoint) -> bool:
    """Results are appended next to a checkpoint that sits in a run directory."""
    return (ckpt.path.parent / CONFIG_FILE).is_file()


def checkpoint_sample(
    ckpt: Checkpoint, plan: AttackPlan, data_dir: str | None, device: torch.device | str
) -> Sample:
    """The test sample. Where data is written or downloaded is the user's --data-dir (or the defaults);
    the data_dir a checkpoint or its run stores is only a folder to look in, and its ``download: false``
    can turn a download off, never on (a file decides nothing about what is written where)."""
    config = read_config(ckpt.path.parent) if records_here(ckpt) else None
    saved = ckpt.meta.get("config", {})
    hints = [h for h in (saved.get("data_dir"), config.data_dir if config else None) if isinstance(h, str)]
    return load_sample(
        ckpt.info,
        n=plan.n,
        seed=plan.seed,
        data_dir=data_dir,
        hints=hints,
        download=saved.get("download") is not False,
        image_size=ckpt.info.image_size,
        device=device,
    )


def run_attacks(
    paths: list[Path],
    plan: AttackPlan,
    *,
    source: Path | None = None,
    data_dir: str | None = None,
    device: torch.device | str = "cpu",
    save: bool = True,
    callbacks: AttackCallbacks | None = None,
    stop: StopRequest | None = None,
) -> list[AttackResult]:
    """Load every checkpoint first (so a bad path fails before any work), then attack them in turn, one
    sample per dataset; with ``save``, each run directory's results go to its attacks.jsonl (all of a
    checkpoint's rows in one append, with signals held). ``stop``: held while they run and polled between
    batches; once a SIGINT/SIGTERM arrived, :class:`AttacksInterrupted`."""
    hooks = callbacks or AttackCallbacks()
    ckpts = [classifier(load_checkpoint(p, device)) for p in paths]
    src = classifier(load_checkpoint(source, device)) if source is not None else None
    if save:  # an attacks.jsonl that is a link is refused now, not after the attacks ran
        for ckpt in ckpts:
            if records_here(ckpt):
                check_target(ckpt.path.parent / ATTACKS_FILE)
    poll = _Poll(stop, len(ckpts), save)
    hooks.on_begin()
    try:
        with stop or contextlib.nullcontext():
            results = _attack_each(ckpts, plan, src, data_dir, device, save, hooks, poll)
            poll.check()  # a signal during the last checkpoint's rows
    finally:
        hooks.on_end()
    return results


def _attack_each(
    ckpts: list[Checkpoint],
    plan: AttackPlan,
    src: Checkpoint | None,
    data_dir: str | None,
    device: torch.device | str,
    save: bool,
    hooks: AttackCallbacks,
    poll: _Poll,
) -> list[AttackResult]:
    samples: dict[str, Sample] = {}
    results: list[AttackResult] = []
    for ckpt in ckpts:
        poll.check()
        name = ckpt.info.name
        if name not in samples:
            samples[name] = checkpoint_sample(ckpt, plan, data_dir, device)
        hooks.on_checkpoint(ckpt)
        found = attack_checkpoint(ckpt, samples[name], plan, source=src, on_batch=poll.wrap(hooks.on_batch))
        with signals_held():  # its rows are written and reported whole, or not at all
            if save and records_here(ckpt):
                record(ckpt.path.parent, found)
            hooks.on_results(ckpt, found)
            results.extend(found)
            poll.done += 1
    return results


def attack(
    checkpoints: list[Path],
    overrides: dict[str, Any],
    *,
    recipe: Path | None = None,
    out: Path | None = None,
    index: int | None = None,
    source: Path | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    save: bool = True,
    callbacks: AttackCallbacks | None = None,
    config: dict[str, Any] | None = None,
    training: Training | None = None,
    stop: StopRequest | None = None,
) -> list[AttackResult]:
    """``spatialmix attack``: :func:`attack_targets`, then :func:`run_attacks` on the resolved device
    (``source``, a checkpoint or run directory, crafts an extra transfer attack; ``config``: config keys
    the recipe's runs are trained with, ``training`` how; ``stop``: polled between attack batches)."""
    paths, plan = attack_targets(
        checkpoints, overrides, recipe=recipe, out=out, index=index, config=config, training=training
    )
    dev = resolve_device(device)
    src = checkpoint_file(source) if source is not None else None
    return run_attacks(
        paths, plan, source=src, data_dir=data_dir, device=dev, save=save, callbacks=callbacks, stop=stop
    )
