"""The checkpoints a command is given: paths, where ``-`` reads more from stdin (one path a line, or the
JSON lines of ``spatialmix train --json``, whose ``checkpoint`` or ``run_dir`` is taken), so
``spatialmix train ... --json | spatialmix eval -`` works."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ConfigError

STDIN = "-"


def paths_from_stdin(text: str) -> list[Path]:
    """The paths in ``text``: each non-blank line is a path, or a JSON object (a run record) whose
    ``checkpoint`` (else ``run_dir``) is taken. A line that is neither is a ConfigError naming it."""
    paths = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        paths.append(Path(_record_path(line, number) if line.startswith("{") else line))
    return paths


def _record_path(line: str, number: int) -> str:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"stdin line {number} starts with '{{' but is not JSON ({exc})") from None
    for name in ("checkpoint", "run_dir"):
        value = record.get(name) if isinstance(record, dict) else None
        if isinstance(value, str) and value:
            return value
    raise ConfigError(f"stdin line {number} is a JSON record without a 'checkpoint' or 'run_dir' path")


def expand_targets(given: Sequence[str | Path], read_stdin: Callable[[], str]) -> list[Path]:
    """``given`` with each ``-`` replaced by the paths read from stdin (read once, however many ``-``
    there are). An empty result is a ConfigError: a command given nothing to work on says so."""
    paths: list[Path] = []
    from_stdin: list[Path] | None = None
    for item in given:
        if str(item) == STDIN:
            if from_stdin is None:  # a second '-' adds nothing: stdin is read once
                from_stdin = paths_from_stdin(read_stdin())
                paths.extend(from_stdin)
        else:
            paths.append(Path(item))
    if not paths:
        where = " (stdin had none)" if from_stdin is not None else ""
        raise ConfigError(
            f"no checkpoints given{where}: pass checkpoint files or run directories, or - for stdin"
        )
    return paths
