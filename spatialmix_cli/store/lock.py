"""One writer per run directory: an exclusive, non-blocking claim held while a run trains.

``fcntl.flock`` on ``<run_dir>/.lock``: the kernel drops the claim when the process ends, however it ends
(SIGKILL included), so there are no stale locks to clean up and a killed point can be resumed by any
worker. Workers of a sweep (a SLURM array, GNU parallel, or several ``spatialmix train --recipe R``
processes) that reach a claimed point skip it and go on. flock works on local disks and on NFS v4 (Linux
emulates it with byte-range locks); where a shared filesystem lacks it, give each worker its own
``--index``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import RunDirError, write_error
from ..safefiles import make_folders, open_lock, remove_made_folders

LOCK_FILE = ".lock"


class RunDirBusy(RunDirError):
    """Another process holds the claim on this run directory."""


def _busy(run_dir: Path, holder: str) -> RunDirBusy:
    return RunDirBusy(f"{run_dir} is being trained by another process ({holder}); skipped")


def check_free(run_dir: Path) -> None:
    """Raise :class:`RunDirBusy` if another process holds the claim on ``run_dir`` right now."""
    holder = claimed_by(run_dir)
    if holder is not None:
        raise _busy(run_dir, holder)


@contextlib.contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """Hold the claim on ``run_dir`` (created if needed) for the block, or raise :class:`RunDirBusy`. The
    lock file is opened without following a link (a ``.lock`` link shipped in a run folder is refused,
    its target never truncated)."""
    path = run_dir / LOCK_FILE
    created = make_folders(run_dir, what="--out")
    try:
        fd = open_lock(path, create=True)
    except OSError as exc:
        remove_made_folders(created)
        raise write_error(exc, f"to --out {run_dir}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(run_dir, _holder(fd)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    except BaseException:
        os.close(fd)  # releases the claim
        fd = -1
        remove_made_folders(created)  # a run that failed before writing anything leaves no folder
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def _holder(fd: int) -> str:
    return os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"


def claimed_by(run_dir: Path) -> str | None:
    """Who holds the claim on ``run_dir`` right now (``pid N on HOST``), or None if nobody does. A lock
    file that is a link or not a regular file is refused (:class:`UnsafePathError`)."""
    try:
        fd = open_lock(run_dir / LOCK_FILE, create=False)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)
    return None
