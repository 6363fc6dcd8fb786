"""A SIGINT or SIGTERM while `spatialmix report` writes leaves the previous report whole, byte for byte (or,
once the new files were being moved into place, the new one whole); the exit code is the signal's, with one
line on stderr. Real signals, sent to this process from inside the write; run directories built by the test
(no training)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
from pathlib import Path

import pytest
import yaml

import spatialmix_cli.analysis.reporting as reporting
import spatialmix_cli.analysis.reporting.build as build

from conftest import tiny_config

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def make_run(root: Path, learn: str, seed: int, acc: float) -> None:
    run = root / f"seed-{seed}_learn-{learn}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config(learn=learn, seed=seed).to_dict()))
    (run / "result.json").write_text(
        json.dumps({"test_acc": acc, "train_acc": acc, "epochs": 1, "seconds": 1})
    )
    line = {"epoch": 1, "train_loss": 1 - acc, "train_acc": acc, "test_acc": acc, "test_loss": 1 - acc}
    (run / "metrics.jsonl").write_text(json.dumps(line) + "\n")


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def previous(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """A report of two runs in rep/; then a third run, so that a new report differs in every file. Quick:
    small spectra and no envelope figure (the slowest to draw); the curves figure stays."""
    monkeypatch.setattr(build.plots, "envelopes", lambda *a, **k: [])
    monkeypatch.setattr(reporting, "build_report", functools.partial(build.build_report, pad=32))
    make_run(tmp_path / "runs", "full", 0, 0.8)
    make_run(tmp_path / "runs", "chans", 0, 0.7)
    first = cli("report", "runs", "--out", "rep", "--draws", "1")
    assert first.exit_code == 0, first.stderr
    make_run(tmp_path / "runs", "full", 1, 0.9)
    before = files(tmp_path / "rep")
    assert any(name.startswith("figures/") for name in before)
    return before


@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_signal_while_the_report_is_written_leaves_the_previous_report_whole(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, previous: dict[str, bytes], signum, sigterm_guard
) -> None:
    real, calls = build.atomic_write_text, []

    def write_then_signal(path, text):  # noqa: ANN001
        real(path, text)
        calls.append(path)
        if len(calls) == 1:  # report.md is written: the signal comes before the next file
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(build, "atomic_write_text", write_then_signal)
    stopped = cli("report", "runs", "--out", "rep", "--draws", "1")
    assert stopped.exit_code == CODES[signum], stopped.stderr
    assert files(tmp_path / "rep") == previous  # staged files removed, nothing else touched
    assert stopped.stdout == "" and len(stopped.stderr.splitlines()) == 1
    assert stopped.stderr.startswith("interrupted (") and "rep is as it was" in stopped.stderr
    if signum == signal.SIGTERM:  # (the slow variant only) a stopped first build leaves no folder either
        calls.clear()
        fresh = cli("report", "runs", "--out", "fresh", "--draws", "1")
        assert fresh.exit_code == CODES[signum] and not (tmp_path / "fresh").exists()


@pytest.mark.slow  # fast sibling: the signal while the report is written
def test_a_signal_while_the_new_report_moves_into_place_waits_for_it(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, previous: dict[str, bytes]
) -> None:
    real = build.signals_held

    @contextlib.contextmanager
    def signal_inside():
        with real():
            os.kill(os.getpid(), signal.SIGINT)
            yield

    monkeypatch.setattr(build, "signals_held", signal_inside)
    stopped = cli("report", "runs", "--out", "rep", "--draws", "1")
    assert stopped.exit_code == 130 and stopped.stdout == "" and len(stopped.stderr.splitlines()) == 1
    assert "after the new report was in place" in stopped.stderr
    now = files(tmp_path / "rep")
    assert set(now) == set(previous) and all(
        now[name] != previous[name] for name in ("report.md", "runs.csv")
    )
    assert json.loads(now["summary.json"])["runs"] == 3
    assert not list((tmp_path / "rep").glob(".report-*"))
