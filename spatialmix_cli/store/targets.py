"""The checkpoints a command is given: paths, where ``-`` reads more from stdin (one path a line, or the
JSON lines of ``spatialmix train --json``, whose ``checkpoint`` or ``run_dir`` is taken), so
``spatialmix train ... --json | spatialmix eval -`` works.

stdin is read as bytes, a line at a time and at most :data:`~..config.limits.MAX_STDIN_LINE_BYTES` of it
at once (a line with no newline is never read whole), and at most
:data:`~..config.limits.MAX_STDIN_LINES` lines. A line must be UTF-8 text without control characters (a
tab aside; a line may end in ``\\r\\n``): anything else (a NUL byte, a binary file piped in by mistake) is
one ConfigError naming the line, before any path is used."""

from __future__ import annotations

import itertools
import json
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ..config.limits import MAX_STDIN_LINE_BYTES, MAX_STDIN_LINES
from ..errors import ConfigError

STDIN = "-"
_GIVE = "give one checkpoint path or `spatialmix train --json` record a line, as UTF-8 text"


def paths_from_stdin(stream: IO[Any] | None) -> list[Path]:
    """The paths on ``stream`` (stdin: a binary stream, or a text one with a ``buffer``; None when stdin
    is closed): each non-blank line is a path, or a JSON object (a run record) whose ``checkpoint`` (else
    ``run_dir``) is taken. A line that is neither, too long, or past the line limit is a ConfigError
    naming it."""
    paths = []
    for number, line in _lines(stream):
        line = line.strip()
        if not line:
            continue
        paths.append(Path(_record_path(line, number) if line.startswith("{") else line))
    return paths


def _lines(stream: IO[Any] | None) -> Iterator[tuple[int, str]]:
    """Each line of ``stream`` with its number (from 1), checked by :func:`_decoded`; a ConfigError past
    :data:`MAX_STDIN_LINES` lines."""
    if stream is None:  # stdin closed (`spatialmix eval - <&-`): nothing on it
        return
    source = getattr(stream, "buffer", stream)
    for number in itertools.count(1):
        raw = source.readline(MAX_STDIN_LINE_BYTES + 1)  # a bounded read: never a whole endless line
        if not raw:
            return
        if number > MAX_STDIN_LINES:
            raise ConfigError(
                f"stdin has more than {MAX_STDIN_LINES:,} lines; give at most {MAX_STDIN_LINES:,} "
                "checkpoints to one command (split the list, e.g. with `split -l` or `xargs -n`)"
            )
        if isinstance(raw, str):  # a text stream without a byte buffer: its bytes as they came
            raw = raw.encode("utf-8", "surrogateescape")
        yield number, _decoded(raw, number)


def _decoded(raw: bytes, number: int) -> str:
    """Line ``number`` as text, its ``\\n`` (or ``\\r\\n``) taken off; a ConfigError if it is longer than
    :data:`MAX_STDIN_LINE_BYTES`, not UTF-8, or holds a control character."""
    body = raw.removesuffix(b"\n").removesuffix(b"\r")
    if len(body) > MAX_STDIN_LINE_BYTES:
        raise _bad_line(number, f"is longer than {MAX_STDIN_LINE_BYTES:,} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{body[exc.start]:02x} at byte {exc.start + 1}"
        raise _bad_line(number, f"is not UTF-8 text ({byte})") from None
    _check_text(text, number, "holds")
    return text


def _check_text(text: str, number: int, holds: str) -> None:
    """A ConfigError if ``text`` (of line ``number``) has a control character (a tab aside) or a lone
    surrogate (a JSON ``\\ud800`` escape): no path has them; ``holds`` begins the message."""
    for column, char in enumerate(text, 1):
        if char != "\t" and unicodedata.category(char) in ("Cc", "Cs"):
            kind = "a control character" if unicodedata.category(char) == "Cc" else "a lone surrogate"
            raise _bad_line(number, f"{holds} {kind} (U+{ord(char):04X} at column {column})")


def _bad_line(number: int, problem: str) -> ConfigError:
    return ConfigError(f"stdin line {number} {problem}; {_GIVE}")


def _record_path(line: str, number: int) -> str:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"stdin line {number} starts with '{{' but is not JSON ({exc})") from None
    for name in ("checkpoint", "run_dir"):
        value = record.get(name) if isinstance(record, dict) else None
        if isinstance(value, str) and value:
            _check_text(value, number, f"is a JSON record whose '{name}' holds")
            return value
    raise ConfigError(f"stdin line {number} is a JSON record without a 'checkpoint' or 'run_dir' path")


def expand_targets(given: Sequence[str | Path], stdin: IO[Any] | None) -> list[Path]:
    """``given`` with each ``-`` replaced by the paths read from ``stdin`` (read once, however many ``-``
    there are; see :func:`paths_from_stdin`). An empty result is a ConfigError: a command given nothing
    to work on says so."""
    paths: list[Path] = []
    from_stdin: list[Path] | None = None
    for item in given:
        if str(item) == STDIN:
            if from_stdin is None:  # a second '-' adds nothing: stdin is read once
                from_stdin = paths_from_stdin(stdin)
                paths.extend(from_stdin)
        else:
            paths.append(Path(item))
    if not paths:
        where = " (stdin had none)" if from_stdin is not None else ""
        raise ConfigError(
            f"no checkpoints given{where}: pass checkpoint files or run directories, or - for stdin"
        )
    return paths
