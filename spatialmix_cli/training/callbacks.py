"""The hooks the library calls while it trains, attacks and evaluates (all no-ops here; the CLI's progress
bars and printers, and ``loggers.MetricLogger``, subclass them). Kept free of torch so that the CLI can
declare its printers without importing it."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..attacks.robustness import AttackResult
    from ..config.recipes import Point
    from ..store.checkpoint import Checkpoint
    from .evaluate import EvalResult
    from .state import TrainResult
    from .stopping import TrainingInterrupted


class Callbacks:
    """Progress hooks; the CLI's progress bar and ``loggers.MetricLogger`` subclass this. All are no-ops."""

    def on_start(
        self, *, run_dir: Path, total_steps: int, done_steps: int, params: dict[str, Any]
    ) -> None: ...

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None: ...

    def on_epoch_end(self, record: dict[str, Any]) -> None: ...

    def on_note(self, text: str) -> None:
        """A one-line remark about how the run executes (e.g. the automatic torch.compile decision)."""

    def close(self) -> None:
        """The run is over (finished, stopped or failed): release what the hooks hold open."""


class PointCallbacks:
    """Hooks of ``commands.train.train_points`` (a recipe's points trained in turn, on rank 0 only); the
    CLI's progress bars and printing subclass this. All are no-ops."""

    def progress(self, label: str, epochs: int) -> AbstractContextManager[Callbacks]:
        """The trainer's hooks for the point ``label`` (of ``epochs`` epochs), open while it trains."""
        return contextlib.nullcontext(Callbacks())

    def on_busy(self, label: str, run_dir: Path, reason: str) -> None:
        """Another worker holds the point's run directory: it is left out."""

    def on_result(self, label: str, result: TrainResult) -> None:
        """The point is finished (``result.skipped``: it was already)."""

    def on_interrupt(self, stopped: TrainingInterrupted) -> None:
        """A stop request stopped the point's training (its state is saved); the exception goes on."""

    def on_end(self, points: list[Point], finished: list[tuple[Point, TrainResult]]) -> None:
        """Every point was trained or left out; ``finished``: those finished now, with their results."""

    def on_note(self, text: str) -> None:
        """A line for the user about a point (a run record kept without its weights)."""


class AttackCallbacks:
    """Hooks of :func:`run_attacks`; the CLI's progress bar and printing subclass this. All are no-ops."""

    def on_begin(self) -> None:
        """Every checkpoint loaded and checked; the attacks start."""

    def on_checkpoint(self, ckpt: Checkpoint) -> None:
        """``ckpt`` is attacked next (its sample is loaded)."""

    def on_batch(self, label: str, done: int, total: int) -> None:
        """A batch of the attack pass ``label`` is done (an ``OnBatch``)."""

    def on_results(self, ckpt: Checkpoint, results: list[AttackResult]) -> None:
        """``ckpt``'s results, after they were recorded."""

    def on_end(self) -> None:
        """The attacks stopped (finished, or an error)."""


class EvalCallbacks:
    """Hooks of :func:`evaluate_checkpoints` (the CLI prints through these). All are no-ops."""

    def on_checkpoint(self, ckpt: Checkpoint) -> None:
        """``ckpt`` is evaluated next."""

    def on_result(self, result: EvalResult) -> None:
        """``result`` is ready."""
