"""The logged steps in the run directory: ``steps.jsonl``, one line per step the trainer logs (every
``log_every`` steps), whatever ``--logger`` says, so that ``spatialmix report`` can draw the training curve
within an epoch (``metrics.jsonl`` holds one line per epoch).

A line is ``{"step": 40, "epoch": 1.739, "train_loss": ..., "train_acc" | "train_psnr": ..., "lr": ...,
"images": 512}``: the global step, the fractional epoch (``step / steps_per_epoch``), the training loss and
metric over the ``images`` trained since the previous logged step of the epoch, and the step's learning
rate. (The trainer's log metrics, which TensorBoard's ``train/*`` shows, are running means over the epoch
so far: drawn across epochs they jump where an epoch starts. The window means here are what the model
does at that point of training. After a resume in mid-epoch, the first window reaches back to the
epoch's start.)

Only rank 0 writes (the trainer's rule for every callback). Lines are appended (never a rewrite) at each
epoch's end, when the run closes and at most every ``FLUSH_SECONDS`` in between: what a killed process
still held is after its last save, which a resume drops anyway. On start the lines after the step the run
starts from are dropped (a killed process's steps after its last save; all of them for a run starting at
step 0), as TensorBoard's ``purge_step`` does, so a resumed run's curve joins without overlap.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..config.runfiles import STEPS_FILE
from ..config.train import TrainConfig
from ..safefiles import append_lines, atomic_write_text, read_jsonl
from .callbacks import Callbacks
from .loggers import Fanout
from .psnr import psnr_from_mse

FLUSH_SECONDS = 10.0
SUMS = ("loss", "score", "count")  # the epoch's running sums among the step's metrics


def window(metrics: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """The training loss and metric over the images since ``before`` (the running sums at the previous
    logged step of the epoch, or zeros), from the running sums in ``metrics``; the metric is the one the
    metrics name (``train_acc``: mean score; ``train_psnr``: the PSNR of the mean squared error)."""
    d = {k: metrics[k] - before.get(k, 0.0) for k in SUMS}
    images = max(d["count"], 1.0)
    found = {"train_loss": d["loss"] / images}
    if "train_acc" in metrics:
        found["train_acc"] = d["score"] / images
    if "train_psnr" in metrics:
        found["train_psnr"] = psnr_from_mse(max(d["score"] / images, 0.0))
    return {**found, "images": int(d["count"])}


def keep_until(path: Path, step: int) -> None:
    """Drop the lines of ``path`` after global step ``step`` (and any unreadable line); one rewrite, and
    only where something is dropped. No file: nothing to do."""
    if not path.exists():
        return
    try:
        found = read_jsonl(path)
        rows, bad = found.rows, bool(found.bad)
    except (OSError, UnicodeDecodeError):
        rows, bad = [], True
    kept = [r for r in rows if isinstance(r.get("step"), int) and r["step"] <= step]
    if bad or len(kept) < len(rows):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


class StepLog(Callbacks):
    """Appends each logged step of a run of ``epochs`` epochs to ``RUN/steps.jsonl`` (see the module)."""

    def __init__(self, epochs: int, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.epochs, self.flush_seconds = epochs, flush_seconds
        self.path: Path | None = None
        self.steps_per_epoch = 1
        self.pending: list[str] = []
        self.flushed = time.monotonic()
        self.before: dict[str, float] = {}  # the running sums at the previous logged step of the epoch
        self.current = -1  # the epoch (0-based) of the previous logged step

    def on_start(self, *, run_dir: Path, total_steps: int, done_steps: int, params: dict[str, Any]) -> None:
        self.path = Path(run_dir) / STEPS_FILE
        self.steps_per_epoch = max(1, total_steps // max(1, self.epochs))
        self.pending, self.before, self.current = [], {}, -1
        keep_until(self.path, done_steps)
        self.flushed = time.monotonic()

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None:
        if metrics is None or self.path is None or not all(k in metrics for k in SUMS):
            return
        if epoch != self.current or metrics["count"] < self.before.get("count", 0.0):
            self.before, self.current = {}, epoch  # a new epoch: its sums start from zero
        row: dict[str, Any] = {"step": global_step, "epoch": round(global_step / self.steps_per_epoch, 6)}
        row.update(window(metrics, self.before))
        row["lr"] = metrics.get("lr")
        self.before = {k: metrics[k] for k in SUMS}
        self.pending.append(json.dumps(row))
        if time.monotonic() - self.flushed >= self.flush_seconds:
            self.flush()

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        self.flush()

    def close(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Append the pending lines (one write)."""
        if self.pending and self.path is not None:
            append_lines(self.path, self.pending)
        self.pending = []
        self.flushed = time.monotonic()


def with_step_log(callbacks: Callbacks, cfg: TrainConfig) -> Callbacks:
    """``callbacks`` (closed with the run, as before) plus a :class:`StepLog` of the run (closed first, so
    its lines are written even if another hook fails to close)."""
    steps = StepLog(cfg.epochs)
    return Fanout([callbacks, steps], owned=[steps, callbacks])


__all__ = ["FLUSH_SECONDS", "StepLog", "keep_until", "window", "with_step_log"]
