"""Errors a user can cause and fix. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SpatialmixError(Exception):
    """Base class of every error caused by bad input (config, data, checkpoint, options)."""

    exit_code = 2


class ConfigError(SpatialmixError, ValueError):
    """A recipe, option or model argument is unknown, of the wrong type, or out of range."""


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
    """A file could not be written (disk full, quota, permissions); what was on disk before is intact."""

    exit_code = 1  # not bad input: the same command succeeds once there is space


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
