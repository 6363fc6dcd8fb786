"""Errors a user can cause and fix. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class SpatialmixError(Exception):
    """Base class of every error caused by bad input (config, data, checkpoint, options)."""

    exit_code = 2


class ConfigError(SpatialmixError, ValueError):
    """A recipe, option or model argument is unknown, of the wrong type, or out of range."""


class ResourceError(ConfigError):
    """A job would need more memory than this machine can give (an estimate made before allocating); the
    message says how much, how it was counted, and which option to lower."""


class DataError(SpatialmixError):
    """A dataset cannot be found, read or downloaded."""


class CheckpointError(SpatialmixError):
    """A checkpoint file is missing, corrupt, or not one of ours."""


class RunDirError(SpatialmixError):
    """An output/run directory cannot be used as asked (exists with another config, not writable...)."""


class UnsafePathError(RunDirError):
    """A write would go through a symbolic link or land outside its output folder, or a file to lock or
    append to is not a regular file; refused before anything is written."""


class StorageError(SpatialmixError):
    """A file could not be written for want of space (disk full, quota, an I/O error); what was on disk
    before is intact."""

    exit_code = 1  # not bad input: the same command succeeds once there is space


class OutputPathError(RunDirError):
    """An output path cannot be written as given (no permission, read-only file system, a file where a
    folder must be, a name too long): bad input, exit 2."""


# errno values that are faults of the machine, not of the path the user gave: exit 1 (StorageError)
FAULT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def write_error(
    exc: OSError, what: str, *, verb: str = "write", kept: str = "", retry: str = ""
) -> SpatialmixError:
    """The error for an ``OSError`` raised while writing ``what``: a :class:`StorageError` (exit 1) for a
    full disk, quota or I/O error, an :class:`OutputPathError` (exit 2) for everything about the path
    itself. ``kept`` says what is intact; ``retry`` how to go on once the cause is fixed."""
    reason = exc.strerror or str(exc)
    if exc.filename and str(exc.filename) not in what:
        reason += f" ({exc.filename})"
    extra = f" ({kept})" if kept else ""
    if exc.errno in FAULT_ERRNOS:
        retry = retry or "run the same command again"
        return StorageError(f"could not {verb} {what}: {reason}{extra}; free some space, then {retry}")
    return OutputPathError(
        f"cannot {verb} {what}: {reason}{extra}; choose another output path or fix its permissions"
    )


class ExternalToolError(SpatialmixError):
    """A program the command calls (e.g. Chromium for report screenshots) is missing or failed."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_choice(what: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise a ConfigError listing them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"unknown {what} '{value}'{did_you_mean(value, choices)}; choose from: {', '.join(choices)}"
        )
    return value
