"""Stopping training cleanly on request: :class:`StopRequest` turns SIGINT/SIGTERM into a flag the trainer
polls between steps (``train(should_stop=...)``), and the trainer raises :class:`TrainingInterrupted` once
the state is saved. Torch-free, so the CLI declares its stop handling without importing torch."""

from __future__ import annotations

import signal
import types
from pathlib import Path
from typing import Any

from ..config.runfiles import LAST_FILE


class TrainingInterrupted(Exception):
    """Raised after the state was saved because ``should_stop()`` turned true (Ctrl-C / SIGTERM)."""

    def __init__(self, run_dir: Path, epoch: int, step: int) -> None:
        super().__init__(f"stopped at epoch {epoch + 1}, step {step}; state saved in {run_dir / LAST_FILE}")
        self.run_dir = run_dir
        self.epoch = epoch + 1  # the epoch it stopped in, 1-based (as in metrics.jsonl and the message)
        self.step = step  # steps done in that epoch


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request the trainer polls between steps (a second SIGINT
    interrupts at once). Use as a context manager; handlers are restored on exit."""

    EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return self.EXIT_CODES.get(self.signum or signal.SIGINT, 130)

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequest:
        for signum in self.EXIT_CODES:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave the default handling alone
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
