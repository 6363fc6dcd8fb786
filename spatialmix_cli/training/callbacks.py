"""The hooks the library calls while it trains, attacks and evaluates (all no-ops here; the CLI's progress
bars and printers, and ``loggers.MetricLogger``, subclass them). Kept free of torch so that the CLI can
declare its printers without importing it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..attacks.robustness import AttackResult
    from ..store.checkpoint import Checkpoint
    from .evaluate import EvalResult


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
