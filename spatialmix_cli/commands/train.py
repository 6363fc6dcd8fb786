"""What ``spatialmix train`` runs (and ``attack --recipe`` and ``unshuffle`` before they measure): a recipe's
points trained in turn, finished ones skipped, and ``--dry-run``'s parameter and memory report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..config.recipes import Point
from ..data.info import planning_info
from ..layers import layer_counts, param_report
from ..models import create_model
from ..store.lock import RunDirBusy
from ..store.rundir import has_weights
from ..training.callbacks import PointCallbacks
from ..training.distributed import is_main
from ..training.loop import train
from ..training.memory import training_estimate
from ..training.state import TrainResult
from ..training.stopping import StopRequest, TrainingInterrupted

Finished = list[tuple[Point, TrainResult]]


class RunBusy(RunDirBusy):
    """The one run asked for (not a point of a sweep) is being trained by another process: the command
    cannot do what it was asked. Exit 1, not 2: nothing in the input is wrong (the same command succeeds
    once the other process has ended), as with a full disk (:class:`~..errors.StorageError`)."""

    exit_code = 1


def _busy_run(exc: RunDirBusy) -> RunBusy:
    """The error of a single run whose folder another process holds: who holds it, and what to do."""
    held = str(exc).removesuffix("; skipped")  # the sweep's wording: a sweep goes on with its next point
    return RunBusy(f"{held}; run the same command again once it has ended, or give another --out")


def train_points(
    points: list[Point],
    *,
    resume: bool,
    overwrite: bool,
    callbacks: PointCallbacks | None = None,
    stop: StopRequest | None = None,
    sweep: bool = True,
) -> Finished:
    """Train each point (finished ones are skipped); (point, result) for every point finished now, points
    another worker holds left out (``callbacks.on_busy``) — but with ``sweep=False`` (one run, not a
    recipe's points) a held point is a :class:`RunBusy` error. ``stop``: held while the points train, so a
    SIGINT/SIGTERM stops the run cleanly (:class:`TrainingInterrupted`, after ``callbacks.on_interrupt``).
    Under torchrun only rank 0 calls ``callbacks``: the other ranks train silently."""
    hooks = callbacks if callbacks is not None and is_main() else PointCallbacks()
    finished: Finished = []
    with stop or contextlib.nullcontext():
        for n, point in enumerate(points, 1):
            label = point.name or point.config.arch
            if len(points) > 1:
                label = f"[{n}/{len(points)}] {label}"
            try:
                result = _train_point(point, label, hooks, resume=resume, overwrite=overwrite, stop=stop)
            except RunDirBusy as exc:  # another worker of the sweep has this point: go on with the next
                if not sweep:
                    raise _busy_run(exc) from None
                hooks.on_busy(label, point.run_dir, str(exc))
                continue
            hooks.on_result(label, result)
            finished.append((point, result))
    hooks.on_end(points, finished)
    return finished


def _train_point(
    point: Point,
    label: str,
    hooks: PointCallbacks,
    *,
    resume: bool,
    overwrite: bool,
    stop: StopRequest | None,
) -> TrainResult:
    try:
        with hooks.progress(label, point.config.epochs) as progress:
            cfg, run_dir = point.config, point.run_dir
            return train(
                cfg, run_dir, resume=resume, overwrite=overwrite, callbacks=progress, should_stop=stop
            )
    except TrainingInterrupted as exc:
        hooks.on_interrupt(exc)
        raise


def with_weights(finished: Finished, kept: str, callbacks: PointCallbacks | None = None) -> Finished:
    """The finished points whose run kept its weights; each run record without them (a committed
    reproduction) is noted (``callbacks.on_note``), its ``kept`` results left as they are."""
    hooks = callbacks or PointCallbacks()
    for point, _ in finished:
        if not has_weights(point.run_dir):
            hooks.on_note(f"{point.run_dir}: a run record without weights; its {kept} are kept as they are")
    return [(p, r) for p, r in finished if has_weights(p.run_dir)]


@dataclass(frozen=True)
class Training:
    """How a command that needs trained points (``attack --recipe``, ``unshuffle``) trains them first:
    ``resume`` unfinished runs, ``overwrite`` all anew, progress to ``callbacks``, ``stop`` held while they
    train."""

    resume: bool = True
    overwrite: bool = False
    callbacks: PointCallbacks | None = None
    stop: StopRequest | None = None

    def finished(self, points: list[Point], kept: str) -> Finished:
        """Train ``points``; those finished now that kept their weights (the others are noted: their
        ``kept`` results stay as they are)."""
        done = train_points(
            points, resume=self.resume, overwrite=self.overwrite, callbacks=self.callbacks, stop=self.stop
        )
        return with_weights(done, kept, self.callbacks)


@dataclass
class DryRun:
    """What training a point would build: parameter counts per role and in total, layers per role, and
    the memory training needs (by the rule of :mod:`spatialmix_cli.training.memory`)."""

    point: Point
    report: dict[str, Any]
    layers: dict[str, int]
    memory_bytes: int


def dry_run(points: list[Point]) -> Iterator[DryRun]:
    """Each point's model built on the meta device (shapes only, no memory: a 65536-wide model with
    1024-tap kernels is counted in milliseconds) and the memory its training would need, point by point."""
    for point in points:
        cfg = point.config
        with torch.device("meta"):
            # a folder dataset's class count from its train/ sub-folders, before any image is read
            model = create_model(cfg.arch, **cfg.model_kwargs(planning_info(cfg.dataset, cfg.data_dir)))
        memory = training_estimate(cfg).nbytes
        yield DryRun(point, param_report(model), dict(layer_counts(model)), memory)
