"""Where things are printed: results to stdout (JSON lines with ``--json``, else the table that is the
result); progress, logs, warnings and errors to stderr. With ``--json`` a result table, when a command
prints one, goes to stderr so stdout stays JSON lines only (:func:`result_console`).

Known errors (``SpatialmixError``) become one line ``error: ...`` and their exit code (2 for bad
input, 1 for a full disk or a diverged loss); an ``OSError`` that reaches here is one line too (exit 1
for a full disk or an I/O error, 2 otherwise: a path that cannot be used); anything else is an internal
error with exit code 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import FAULT_ERRNOS, SpatialmixError


def console() -> Console:
    """A rich console on the *current* stderr (so test runners that swap streams capture it)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # Logs and pipes get wide tables rather than rich's 80-column default with truncated cells.
    return err if err.is_terminal else Console(stderr=True, highlight=False, soft_wrap=True, width=160)


def result_console(as_json: bool) -> Console:
    """Where a table that *is* a command's result goes: stdout without ``--json`` (so ``> file`` and
    pipes get it, as with the huggingface CLI), stderr with it (stdout then holds JSON lines only)."""
    if as_json:
        return console()
    out = Console(highlight=False, soft_wrap=True)  # the *current* stdout, as console() for stderr
    return out if out.is_terminal else Console(highlight=False, soft_wrap=True, width=160)


def print_result(renderable: Any, as_json: bool) -> None:
    """Print a result table on :func:`result_console`; a reader that stops early (``| head``) ends the
    command quietly, as :func:`emit_json` does."""
    try:
        result_console(as_json).print(renderable)
        if not as_json:
            sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def emit_json(obj: Any) -> None:
    """One JSON object per line on stdout. A reader that stops early (``| head``) ends the command
    quietly, as with any Unix filter."""
    try:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def print_error(message: str) -> None:
    text = " ".join(str(message).split())
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def print_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    """A warning as one ``warning: ...`` line on stderr (``warnings.showwarning``'s signature), not
    Python's two lines of source location."""
    sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def handled_errors(debug: bool) -> Iterator[None]:
    """Turn exceptions raised inside a command into one line on stderr and an exit code; warnings become
    one ``warning:`` line each (for the command's duration: ``catch_warnings`` restores the old hook)."""
    with warnings.catch_warnings():
        warnings.showwarning = print_warning
        yield from _handled(debug)


def _handled(debug: bool) -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except SpatialmixError as exc:
        if debug:
            raise
        print_error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:  # a path the command was given, or the machine: say which, in one line
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print_error(f"{exc.strerror or exc}{where}")
        raise typer.Exit(1 if exc.errno in FAULT_ERRNOS else 2) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI
        if debug:
            raise
        print_error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        raise typer.Exit(1) from None


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*[fmt(v) for v in row])
    return t


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
