"""Taking a run directory for training, the same outcome on every rank: checked read-only (and refused or
skipped before the data loads), then claimed (``store.lock``), decided again and written
(``store.rundir``) by rank 0, whose outcome every rank receives."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import torch

from ..config.train import TrainConfig
from ..errors import RunDirError
from ..store.lock import RunDirBusy, check_free, claim
from ..store.rundir import check_run_dir, init_run_dir
from . import distributed

_OUTCOMES = ("new", "unfinished", "finished", "busy")


class RunDirClaim:
    """A run directory being taken for training (see :func:`claimed_run_dir`). ``state`` is ``new``,
    ``unfinished`` or ``finished``, the same on every rank; the claim is held until the block ends."""

    def __init__(
        self,
        run_dir: Path,
        cfg: TrainConfig,
        *,
        resume: bool,
        overwrite: bool,
        dist: distributed.Dist | None,
        device: torch.device,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.run_dir, self.cfg, self.resume, self.overwrite = run_dir, cfg, resume, overwrite
        self.dist, self.device, self.check = dist, device, check
        self.state = "new"
        self._held = contextlib.ExitStack()

    def __enter__(self) -> RunDirClaim:
        self._held.__enter__()
        try:
            self.state = self._on_rank0(self._precheck)
        except BaseException:
            self._held.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._held.__exit__(kind, exc, tb)

    def claim(self) -> str:
        """Claim the directory, decide again and write its config (rank 0); the new ``state``."""
        self.state = self._on_rank0(self._decide)
        return self.state

    def _precheck(self) -> str:  # read-only: refuse or skip before the data is loaded
        check_free(self.run_dir)
        state = check_run_dir(self.run_dir, self.cfg, resume=self.resume, overwrite=self.overwrite)
        if state != "finished" and self.check is not None:  # what cannot fit is refused before loading
            self.check()
        return state

    def _decide(self) -> str:  # under the claim: another worker may have finished or started this point
        self._held.enter_context(claim(self.run_dir))  # while the data loaded, so decide again, then write
        state = check_run_dir(self.run_dir, self.cfg, resume=self.resume, overwrite=self.overwrite)
        if state != "finished":
            init_run_dir(self.run_dir, self.cfg, state, overwrite=self.overwrite)
        return state

    def _on_rank0(self, decision: Callable[[], str]) -> str:
        """Run ``decision`` on rank 0 (or alone) and give its outcome to every rank, so all ranks train,
        skip or fail the same point together; a rank that went its own way would wait forever in the next
        collective."""
        outcome, error = None, None
        if self.dist is None or self.dist.main:
            try:
                outcome = decision()
            except RunDirBusy as exc:
                outcome, error = "busy", exc
            except BaseException as exc:
                error = exc
        shared = distributed.broadcast_choice(outcome, _OUTCOMES, self.dist, self.device)
        if error is not None:
            raise error
        if shared == "busy":
            raise RunDirBusy(f"{self.run_dir} is being trained by another process; skipped")
        if shared is None:
            raise RunDirError(f"rank 0 could not prepare {self.run_dir}; see its error")
        return shared


def claimed_run_dir(
    run_dir: Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    dist: distributed.Dist | None = None,
    device: torch.device | None = None,
    check: Callable[[], None] | None = None,
) -> RunDirClaim:
    """Take ``run_dir`` for training ``cfg``, in two steps that keep a refused point cheap::

        with claimed_run_dir(run_dir, cfg, resume=..., dist=dist, device=device) as run:
            if run.state == "finished": ...        # read-only precheck (and ``check``) on entry
            data = prepare_data(...)               # a missing dataset fails here, before anything is written
            if run.claim() == "finished": ...      # claim, decide again, write config.yaml

    Rank 0 decides and writes; every rank gets its outcome (a busy directory raises
    :class:`RunDirBusy` everywhere, a failure on rank 0 a :class:`RunDirError` on the others)."""
    where = device or torch.device("cpu")
    return RunDirClaim(run_dir, cfg, resume=resume, overwrite=overwrite, dist=dist, device=where, check=check)
