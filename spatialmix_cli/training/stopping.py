"""Stopping training cleanly on request: :class:`StopRequest` turns SIGINT/SIGTERM into a flag the trainer
polls between steps (``train(should_stop=...)``), and the trainer raises :class:`TrainingInterrupted` once
the state is saved. :func:`signals_raise` turns them into :class:`Interrupted` at once (work that is thrown
away when stopped), :func:`signals_held` holds them over a few steps that must not be cut (moving a finished
report into place, appending a finished attack's rows). Torch-free, so the CLI declares its stop handling
without importing torch."""

from __future__ import annotations

import contextlib
import signal
import types
from collections.abc import Iterator
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


EXIT_CODES = StopRequest.EXIT_CODES


class Interrupted(KeyboardInterrupt):
    """A SIGINT/SIGTERM raised as an exception by :func:`signals_raise`; ``exit_code`` is the signal's
    (130 / 143). ``finished``: set by code that catches it right after a held block, when that block (the
    last step of the work) was done before the signal was acted on."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.finished = False

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 130)


def _install(handler: Any) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    for signum in EXIT_CODES:
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave the default handling alone
            pass
    return previous


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread while inside (so ``finally`` blocks
    clean up after a SIGTERM too); the handlers before are restored on exit."""

    def handle(signum: int, frame: types.FrameType | None) -> None:
        raise Interrupted(signum)

    previous = _install(handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside are held until the block ends, then delivered to the handlers
    that were there before (a :class:`StopRequest` sets its flag, :func:`signals_raise` raises, the default
    SIGINT raises KeyboardInterrupt): a few quick steps that must not be cut halfway."""
    held: list[int] = []
    previous = _install(lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)  # handled by the restored handler before this returns
