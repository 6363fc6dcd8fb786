"""A rich progress bar on stderr for the trainer's callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..training import Callbacks
from .output import pct


class TrainProgress(Callbacks):
    """One bar over all steps of a run, with ETA and live loss / accuracy; a line per finished epoch."""

    def __init__(self, console: Console, label: str, epochs: int) -> None:
        self.console = console
        self.label = label
        self.epochs = epochs
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            transient=False,
            disable=not console.is_terminal,  # logs get the per-epoch lines only, not bar redraws
        )
        self.task: Any = None

    def __enter__(self) -> TrainProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_start(self, *, run_dir: Path, total_steps: int, done_steps: int, params: dict[str, Any]) -> None:
        trainable, frozen = params["params_trainable"], params["params_frozen"]
        resumed = f", resumed at step {done_steps}" if done_steps else ""
        self.console.print(
            f"{self.label}: {run_dir} ({trainable:,} trainable / {frozen:,} frozen params{resumed})"
        )
        self.task = self.progress.add_task(self.label, total=total_steps, completed=done_steps, stats="")

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None:
        fields: dict[str, Any] = {"description": f"{self.label} epoch {epoch + 1}/{self.epochs}"}
        if metrics is not None:
            fields["stats"] = (
                f"loss {metrics['train_loss']:.4f}  {_metric(metrics, 'train')}  lr {metrics['lr']:.2e}"
            )
        self.progress.update(self.task, completed=global_step, **fields)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        test = (
            f"  test loss {record['test_loss']:.4f} {_metric(record, 'test')}"
            if record["test_loss"] is not None
            else ""
        )
        self.progress.console.print(
            f"  epoch {record['epoch']}/{self.epochs}  train loss {record['train_loss']:.4f} "
            f"{_metric(record, 'train')}{test}  ({record['seconds']:.1f}s)"
        )

    def on_note(self, text: str) -> None:
        self.progress.console.print(f"  {text}")


def _metric(values: dict[str, Any], split: str) -> str:
    """``acc 81.20%`` for classification, ``PSNR 17.31 dB`` for un-shuffling."""
    if values.get(f"{split}_psnr") is not None:
        return f"PSNR {values[f'{split}_psnr']:.2f} dB"
    return f"acc {pct(values.get(f'{split}_acc'))}"


class PassProgress:
    """A bar over the batches of each attack (or evaluation) pass, relabelled per pass: an ``OnBatch``."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.prefix = ""
        self.task: Any = None

    def __enter__(self) -> PassProgress:
        self.progress.start()
        self.task = self.progress.add_task("", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, label: str, done: int, total: int) -> None:
        description = f"{self.prefix} · {label}" if self.prefix else label
        self.progress.update(self.task, description=description, completed=done, total=total)
