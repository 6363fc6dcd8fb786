"""Progress on stderr for the trainer's callbacks and for attack passes: a rich bar in a terminal; outside
one (a SLURM log, a pipe) one plain line every ``SPATIALMIX_PROGRESS_SECONDS`` seconds (default 30); a
training line at the first log step after that (its loss and accuracy are that step's)."""

from __future__ import annotations

import os
import time
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

from ..errors import ConfigError
from ..training.callbacks import Callbacks
from .output import pct

PROGRESS_ENV = "SPATIALMIX_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0


def line_interval() -> float:
    """Seconds between the plain progress lines outside a terminal (``$SPATIALMIX_PROGRESS_SECONDS``)."""
    raw = os.environ.get(PROGRESS_ENV, "")
    if not raw.strip():
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{PROGRESS_ENV} must be a positive number of seconds, got '{raw}'")
    return value


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``12s``."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Ticker:
    """Says when a plain line is due: every ``interval`` seconds; and the ETA from the pace since ``start``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = self.started = time.monotonic()
        self.first = 0

    def start(self, done: int) -> None:
        self.last = self.started = time.monotonic()
        self.first = done

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True

    def eta(self, done: int, total: int) -> str:
        pace = (time.monotonic() - self.started) / max(done - self.first, 1)
        return duration(pace * (total - done)) if done > self.first else "?"


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
        self.plain = None if console.is_terminal else Ticker(line_interval())
        self.total = 0
        self.last: dict[str, float] | None = None

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
        self.total = total_steps
        if self.plain is not None:
            self.plain.start(done_steps)

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None:
        fields: dict[str, Any] = {"description": f"{self.label} epoch {epoch + 1}/{self.epochs}"}
        if metrics is not None:
            fields["stats"] = (
                f"loss {metrics['train_loss']:.4f}  {_metric(metrics, 'train')}  lr {metrics['lr']:.2e}"
            )
        self.progress.update(self.task, completed=global_step, **fields)
        self.last = metrics or self.last
        # A plain line waits for a log step (``log_every``): printed at another step, it repeated the loss
        # of the last log step as if it were this step's.
        if self.plain is not None and metrics is not None and self.plain.due():
            line = self.plain_line(global_step, epoch, self.plain.eta(global_step, self.total))
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def plain_line(self, step: int, epoch: int, eta: str) -> str:
        """``  run: step 120/800 (15%) epoch 2/10  loss 1.2345  acc 55.00%  lr 1.00e-03  812 img/s  eta 3m05s``."""
        head = f"  {self.label}: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%) "
        head += f"epoch {epoch + 1}/{self.epochs}"
        m = self.last
        stats = (
            f"  loss {m['train_loss']:.4f}  {_metric(m, 'train')}  lr {m['lr']:.2e}  {m['images_per_s']:.0f} img/s"
            if m is not None
            else ""
        )
        return f"{head}{stats}  eta {eta}"

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
        self.console = console
        self.plain = None if console.is_terminal else Ticker(line_interval())
        self.pass_label = ""

    def __enter__(self) -> PassProgress:
        self.progress.start()
        self.task = self.progress.add_task("", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, label: str, done: int, total: int) -> None:
        description = f"{self.prefix} · {label}" if self.prefix else label
        self.progress.update(self.task, description=description, completed=done, total=total)
        if self.plain is None:
            return
        if description != self.pass_label:  # a new pass: its pace starts now
            self.pass_label = description
            self.plain.start(done)
        if self.plain.due():
            eta = self.plain.eta(done, total)
            self.console.print(
                f"  {description}: batch {done}/{total}  eta {eta}", highlight=False, markup=False
            )
