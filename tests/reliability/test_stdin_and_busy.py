"""Issue 31, items 1 and 7. stdin (`eval -`, `info -`, `attack -`) is read as bytes with a bound on a line's
length and on the number of lines, and a line that is not a path or a run record (a NUL or other control
byte, invalid UTF-8, an endless line) is one `error:` line naming it, exit 2. A single run whose folder
another process is training fails (exit 1, one line); a sweep still skips the busy point."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from spatialmix_cli.cli.app import app
from spatialmix_cli.config.limits import MAX_STDIN_LINE_BYTES, MAX_STDIN_LINES
from spatialmix_cli.store.lock import claim
from spatialmix_cli.training.loop import train

from conftest import disk_snapshot, json_lines, tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run in a folder whose name has a space and non-ASCII letters (well under a second)."""
    run_dir = tmp_path_factory.mktemp("stdin") / "rún é"
    train(tiny_config(epochs=1, subset=64, test_subset=32), run_dir)
    return run_dir


def _invoke(args: list[str], stdin: bytes | None = None):
    return CliRunner().invoke(app, args, input=stdin, catch_exceptions=False)


def _assert_one_error(result, code: int, message: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- stdin ------------------------------------------------------------------------------------------------

BAD_STDIN = {
    "nul-byte": (b"runs/a\x00b\n", "stdin line 1 holds a control character (U+0000 at column 7)"),
    "nul-on-line-3": (b"\nruns/x\na\x00\n", "stdin line 3 holds a control character"),
    "control-byte": (b"a\x1b[31mb\n", "stdin line 1 holds a control character (U+001B"),
    "bare-carriage-return": (b"a\rb\n", "stdin line 1 holds a control character (U+000D"),
    "invalid-utf8": (b"ok\nr\xffn\n", "stdin line 2 is not UTF-8 text (byte 0xff at byte 2)"),
    "binary-file": (bytes(range(256)), "stdin line 1 holds a control character (U+0000 at column 1)"),
    "long-line": (b"a" * (MAX_STDIN_LINE_BYTES + 1), f"stdin line 1 is longer than {MAX_STDIN_LINE_BYTES:,}"),
    "too-many-lines": (b"x\n" * (MAX_STDIN_LINES + 1), f"stdin has more than {MAX_STDIN_LINES:,} lines"),
    "json-nul": (
        b'{"checkpoint": "a\\u0000b"}\n',
        "JSON record whose 'checkpoint' holds a control character",
    ),
    "json-surrogate": (b'{"run_dir": "a\\ud800"}\n', "JSON record whose 'run_dir' holds a lone surrogate"),
}


# every case through `info`; eval and attack read stdin with the same code: the two cases and one more
CASES = [("info", case) for case in sorted(BAD_STDIN)]
CASES += [(c, case) for c in ("eval", "attack") for case in ("nul-byte", "long-line", "invalid-utf8")]


@pytest.mark.parametrize(("command", "case"), CASES)
def test_stdin_that_is_not_paths_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, case: str
) -> None:
    monkeypatch.chdir(tmp_path)
    stdin, message = BAD_STDIN[case]
    before = disk_snapshot(tmp_path)
    _assert_one_error(_invoke([command, "-"], stdin), 2, message)
    assert disk_snapshot(tmp_path) == before


class _Endless(io.BufferedIOBase):
    """A stdin that never ends (``cat /dev/zero``, ``yes``): ``chunk`` again and again. A read without a
    bound, or far past what the reader may take, fails the test instead of eating the machine's memory."""

    def __init__(self, chunk: bytes) -> None:
        self.chunk, self.given = chunk, 0

    def readable(self) -> bool:
        return True

    def _take(self, size: int | None) -> bytes:
        if size is None or size < 0:
            raise AssertionError("stdin was read without a bound")
        self.given += size
        if self.given > 4 * max(MAX_STDIN_LINE_BYTES, MAX_STDIN_LINES * len(self.chunk)):
            raise AssertionError("stdin was read far past its bounds")
        return (self.chunk * (size // len(self.chunk) + 1))[:size]

    def read(self, size: int | None = -1) -> bytes:
        return self._take(size)

    read1 = read

    def readline(self, size: int | None = -1) -> bytes:
        if self.chunk.endswith(b"\n"):  # a line at a time
            return self._take(min(len(self.chunk), size if size is not None and size >= 0 else 1 << 62))
        return self._take(size)


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (b"a", f"stdin line 1 is longer than {MAX_STDIN_LINE_BYTES:,} bytes"),  # one endless line
        (b"runs/x\n", f"stdin has more than {MAX_STDIN_LINES:,} lines"),  # endless lines
        (b"\n", f"stdin has more than {MAX_STDIN_LINES:,} lines"),  # `yes ''`: blank lines count too
    ],
)
def test_an_endless_stdin_is_read_only_up_to_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: bytes, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(typer.testing, "make_input_stream", lambda *_: _Endless(chunk))
    _assert_one_error(_invoke(["info", "-"]), 2, message)


def test_paths_and_records_on_stdin_still_work(run: Path) -> None:
    """CRLF line ends, blank lines, a path with a space and non-ASCII letters, a run record."""
    record = json.dumps({"run_dir": str(run), "test_acc": 0.5})  # \u00fa escapes: still the same path
    stdin = f"\r\n{run}\r\n\n{record}\n".encode()
    result = _invoke(["info", "-", "--json"], stdin)
    assert result.exit_code == 0, result.stderr
    assert [r["arch"] for r in json_lines(result.stdout)] == ["convmixer", "convmixer"]
    result = _invoke(["eval", "-", "--json"], f"{run}\n".encode())
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["n"] == 32


_LINE_BYTES = st.sampled_from([b"\x00", b"\x01", b"\x1b", b"\x7f", b"\r", b"\t", b"\xff", b"\xc3", b"\x85"])
_LINES = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.one_of(st.binary(max_size=4), _LINE_BYTES), max_size=6).map(b"".join),
    st.dictionaries(st.sampled_from(["checkpoint", "run_dir", "x"]), st.text(max_size=20), max_size=2).map(
        json.dumps
    ),
    st.sampled_from(["", " ", "{", "{}", "[1]", '{"checkpoint": 1}', ".", "/", "~", "-", "RUN", "RUN/x"]),
)


def _stdin(lines: list[str | bytes], run: Path, ending: bytes) -> bytes:
    raw = [s.replace("RUN", str(run)).encode() if isinstance(s, str) else s for s in lines]
    return ending.join(raw)


@pytest.mark.slow  # ~20 s of CLI calls; fast siblings: test_stdin_that_is_not_paths_is_one_error_line
@settings(
    max_examples=int(os.environ.get("SPATIALMIX_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(["info", "eval", "info", "attack"]),
    lines=st.lists(_LINES, max_size=6),
    ending=st.sampled_from([b"\n", b"\r\n"]),
)
def test_fuzzed_stdin_works_or_is_one_error_line_exit_2(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, lines: list, ending: bytes
) -> None:
    """Whatever is on stdin: the command works (exit 0), or exit 2 with one `error:` line and nothing on
    stdout — never exit 1, never a traceback — and nothing is written."""
    monkeypatch.chdir(tmp_path)
    stdin = _stdin(lines, run, ending)
    if command == "attack":  # a real checkpoint would run an attack: attack sees only the rest
        stdin = stdin.replace(str(run).encode(), b"nope")
    before = disk_snapshot(tmp_path), disk_snapshot(run)
    result = _invoke([command, "-", "--json"], stdin)
    assert result.exit_code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 2:
        lines_out = result.stderr.strip().splitlines()
        assert len(lines_out) == 1 and lines_out[0].startswith("error: "), result.stderr
        assert result.stdout == ""
    assert (disk_snapshot(tmp_path), disk_snapshot(run)) == before


# --- a single run whose folder another process is training -------------------------------------------------

_TINY = ["--dataset", "synthetic", "--epochs", "1", "--width", "8", "--depth", "1", "--kernel", "3"]
_TINY += ["--set", "subset=64", "--set", "test_subset=32", "--set", "logger=none", "--device", "cpu"]
_HELD = "busy is being trained by another process (pid"


@pytest.mark.parametrize("extra", [[], ["--json"], ["--resume"], ["--overwrite"]])
def test_a_single_run_whose_folder_is_claimed_fails_with_one_line(
    cli, tmp_path: Path, extra: list[str]
) -> None:
    """Not "skipped" and exit 0: the run asked for was not done. Exit 1, not 2: nothing in the input is
    wrong (the same command succeeds once the other process has ended)."""
    with claim(tmp_path / "busy"):  # held by this process, as another worker would
        before = disk_snapshot(tmp_path)
        result = cli("train", *_TINY, "--out", "busy", *extra)
        _assert_one_error(result, 1, _HELD)
        assert "run the same command again once it has ended, or give another --out" in result.stderr
        assert "skipped" not in result.stderr
        assert disk_snapshot(tmp_path) == before
    done = cli("train", *_TINY, "--out", "busy", "--json")  # the claim released: the same command trains
    assert done.exit_code == 0 and json_lines(done.stdout)[-1]["run_dir"] == "busy", done.stderr


def test_a_sweep_still_skips_a_busy_point_and_lists_it(cli, tmp_path: Path) -> None:
    args = ["train", "--recipe", "r.yaml"]
    (tmp_path / "r.yaml").write_text(
        "out: sweep\nbase: {dataset: synthetic, subset: 64, test_subset: 32, width: 8, depth: 1, kernel: 3, "
        "patch: 4, epochs: 1, device: cpu, logger: none}\nsweep: {seed: [0, 1]}\n"
    )
    with claim(tmp_path / "sweep" / "seed-0"):
        listed = cli(*args, "--list")
        assert [r["status"] for r in json_lines(listed.stdout)] == ["busy", "new"], listed.stderr
        result = cli(*args, "--json")
        assert result.exit_code == 0, result.stderr
        rows = json_lines(result.stdout)
        assert rows[0] == {"run_dir": "sweep/seed-0", "skipped": True, "busy": True}
        assert "seed-0 is being trained by another process" in result.stderr
    assert (tmp_path / "sweep" / "seed-1" / "model.safetensors").is_file()
    assert not (tmp_path / "sweep" / "seed-0" / "config.yaml").exists()
