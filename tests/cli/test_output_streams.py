"""Where output goes: a table that is the result on stdout without --json (stderr then holds progress and
notes only); with --json stdout holds JSON lines only. And an interrupted training run names the command
that resumes it (stderr), with one JSON record of the interrupted run on stdout under --json."""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spatialmix_cli import TrainConfig, train
from spatialmix_cli.cli import train as train_cli

from conftest import json_lines, tiny_config

TINY = ["--dataset", "synthetic", "--set", "subset=128", "--set", "test_subset=32", "--width", "8", "--depth", "1",
        "--set", "kernel=3", "--set", "patch=4", "--batch-size", "32", "--device", "cpu",
        "--logger", "none"]  # fmt: skip
TABLE_EDGE = "━"  # rich's header rule: a table printed on a stream shows it


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny classifier and a tiny un-shuffling run (each well under a second)."""
    root = tmp_path_factory.mktemp("streams")
    unshuffle = TrainConfig.from_dict(dict(task="unshuffle", arch="convmixer_unshuffle", dataset="synthetic",
                                           width=8, depth=1, kernel=3, subset=64, test_subset=16, epochs=1,
                                           batch_size=32, device="cpu", learn="chans", logger="none"))  # fmt: skip
    train(tiny_config(epochs=1, subset=128, test_subset=32), root / "clf")
    train(unshuffle, root / "unshuffle")
    return {"clf": root / "clf", "unshuffle": root / "unshuffle"}


def json_only(text: str) -> list[dict[str, Any]]:
    """Every non-empty line of ``text`` parsed as one JSON object (fails on anything else)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no JSON lines"
    return [json.loads(line) for line in lines]


def commands(runs: dict[str, Path]) -> dict[str, tuple[list[Any], str]]:
    """Each command with a result table: its arguments and the table's title."""
    return {
        "train": (["train", *TINY, "--epochs", "1", "--out", "run"], "test acc/PSNR"),
        "eval": (["eval", runs["clf"], "--n", "8"], "clean test metrics"),
        "spectrum": (["spectrum", "--random", "2", "--kernel", "3"], "spectral coverage"),
        "spectrum-ckpt": (["spectrum", runs["clf"], "--pad", "16"], "coverage"),
        "attack": (
            ["attack", runs["clf"], "--method", "fgsm", "--eps", "1/255", "--n", "8", "--no-checks"],
            "robust accuracy",
        ),  # fmt: skip
        "unshuffle": (["unshuffle", "--eval", runs["unshuffle"], "--grid", "grid.png"], "un-shuffling"),
    }


@pytest.mark.parametrize("name", ["train", "eval", "spectrum", "spectrum-ckpt", "attack", "unshuffle"])
def test_the_result_table_goes_to_stdout_and_json_keeps_stdout_json(cli, runs, name: str) -> None:
    args, title = commands(runs)[name]
    plain = cli(*args)
    assert plain.exit_code == 0, plain.stderr
    assert title in plain.stdout and TABLE_EDGE in plain.stdout
    assert title not in plain.stderr and TABLE_EDGE not in plain.stderr
    if name == "train":
        args = [*args, "--overwrite"]
    as_json = cli(*args, "--json")
    assert as_json.exit_code == 0, as_json.stderr
    json_only(as_json.stdout)
    assert TABLE_EDGE not in as_json.stdout


def _fake_bench(presets, modes, settings, out, on_row=None) -> dict[str, Any]:
    """A bench report with made-up numbers: this test checks where its table goes, not the numbers."""
    row: dict[str, Any] = {"preset": presets[0], "learn": modes[0]}
    for kind in ("train", "eval", "attack"):
        row |= {f"{kind}_img_s": 10.0, f"{kind}_ref_img_s": 8.0, f"{kind}_ratio": 1.25,
                f"{kind}_ratio_quartiles": [1.2, 1.3]}  # fmt: skip
    if on_row is not None:
        on_row(row)
    return {"rows": [row]}


def test_bench_table_goes_to_stdout_without_json(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("spatialmix_cli.commands.bench.write_bench", _fake_bench)
    plain = cli("bench", "--preset", "convmixer", "--learn", "chans", "--device", "cpu")
    assert plain.exit_code == 0, plain.stderr
    assert "throughput" in plain.stdout and "throughput" not in plain.stderr and "wrote" in plain.stderr
    as_json = cli("bench", "--preset", "convmixer", "--learn", "chans", "--device", "cpu", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    assert json_only(as_json.stdout)[0]["preset"] == "convmixer" and "throughput" in as_json.stderr


def test_report_claims_table_goes_to_stdout_without_json(cli, tmp_path: Path, monkeypatch) -> None:
    claim = SimpleNamespace(id=1, text="frozen random filters suffice", verdict="holds", flagged=False)
    fake = SimpleNamespace(claims=[claim], runs=[1, 2], files=[], summary=lambda: {"runs": 2})
    monkeypatch.setattr(
        "spatialmix_cli.analysis.reporting.build_report", lambda *a, **k: fake
    )  # imported at call time
    (tmp_path / "r").mkdir()
    plain = cli("report", "r", "--out", "rep")
    assert plain.exit_code == 0, plain.stderr
    assert "claims from 2 runs" in plain.stdout and "claims from" not in plain.stderr
    as_json = cli("report", "r", "--out", "rep", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    assert json_only(as_json.stdout) == [{"runs": 2}] and "claims from 2 runs" in as_json.stderr


class StopAfter:
    """A StopRequest stand-in: asks to stop after ``steps`` polls, as if ``signum`` had arrived then."""

    steps = 2
    signum = signal.SIGINT

    def __init__(self) -> None:
        self.polls = 0

    def __enter__(self) -> StopAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self) -> bool:
        self.polls += 1
        return self.polls >= self.steps

    @property
    def exit_code(self) -> int:
        return {signal.SIGINT: 130, signal.SIGTERM: 143}[self.signum]


def _resume_line(stderr: str) -> str:
    (line,) = [x for x in stderr.splitlines() if x.startswith("resume with: ")]
    return line.removeprefix("resume with: ")


@pytest.mark.parametrize(  # SIGTERM takes the same path as Ctrl-C once caught: under slow
    "signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)]
)
def test_an_interrupt_names_the_resume_command_and_json_records_it(cli, monkeypatch, signum) -> None:
    monkeypatch.setattr(StopAfter, "signum", signum)
    monkeypatch.setattr(train_cli, "StopRequest", StopAfter)
    stopped = cli("train", *TINY, "--epochs", "2", "--out", "runs/x", "--json")
    assert stopped.exit_code == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], stopped.stderr
    (record,) = json_only(stopped.stdout)
    command = _resume_line(stopped.stderr)
    assert command == "spatialmix train --out runs/x --resume"
    assert record == {"run_dir": "runs/x", "status": "interrupted", "epoch": 1, "step": 2, "resume": command}
    monkeypatch.setattr(StopAfter, "steps", 10**9)  # no more interrupts: the printed command finishes the run
    resumed = cli(*shlex.split(command)[1:], "--json")
    assert resumed.exit_code == 0, resumed.stderr
    (done,) = json_only(resumed.stdout)
    assert done["resumed"] is True and done["epochs"] == 2


@pytest.mark.slow  # fast sibling: the interrupt test
def test_an_interrupted_recipe_point_resumes_with_the_printed_command(
    cli, tmp_path: Path, monkeypatch
) -> None:
    """A point of a sweep run with options on top of the recipe: the printed command continues exactly that
    point (its config, options included, is saved in its run directory); the sweep then finds it done."""
    (tmp_path / "r.yaml").write_text(
        "name: r\nbase: {dataset: synthetic, subset: 128, test_subset: 32, width: 8, depth: 1, kernel: 3, patch: 4,"
        " batch_size: 32, device: cpu, epochs: 2}\nsweep: {seed: [0, 1]}\n"
    )
    monkeypatch.setattr(train_cli, "StopRequest", StopAfter)
    stopped = cli("train", "--recipe", "r.yaml", "--out", "o", "--set", "lr=0.005")
    assert stopped.exit_code == 130 and stopped.stdout == "", stopped.stderr
    command = _resume_line(stopped.stderr)
    assert "continue the whole sweep" in stopped.stderr
    monkeypatch.setattr(StopAfter, "steps", 10**9)
    resumed = cli(*shlex.split(command)[1:], "--json")
    assert resumed.exit_code == 0, resumed.stderr
    (done,) = json_only(resumed.stdout)
    assert done["resumed"] is True and Path(done["run_dir"]).parent == Path("o")
    sweep = cli("train", "--recipe", "r.yaml", "--out", "o", "--set", "lr=0.005", "--json")
    assert sweep.exit_code == 0, sweep.stderr
    first, second = json_only(sweep.stdout)
    assert first["skipped"] is True and first["run_dir"] == done["run_dir"] and not second["skipped"]


@pytest.mark.slow  # fast sibling: the interrupt test
def test_an_interrupted_unshuffle_run_says_how_to_resume_it_and_then_score_it(cli, monkeypatch) -> None:
    args = ["unshuffle", "--dataset", "synthetic", "--learn", "chans", "--width", "8", "--depth", "1",
            "--set", "kernel=3", "--epochs", "1", "--set", "subset=128", "--set", "test_subset=32", "--device", "cpu",
            "--set", "batch_size=32", "--out", "u"]  # fmt: skip
    monkeypatch.setattr(train_cli, "StopRequest", StopAfter)
    stopped = cli(*args, "--json")
    # unshuffle's stdout holds scores only: no record of the interrupted run there
    assert stopped.exit_code == 130 and stopped.stdout == "", stopped.stderr
    assert _resume_line(stopped.stderr) == "spatialmix train --out u --resume"
    assert "then score: the same `spatialmix unshuffle` command again, with --resume" in stopped.stderr
    monkeypatch.setattr(StopAfter, "steps", 10**9)
    scored = cli(*args, "--resume", "--json")
    assert scored.exit_code == 0, scored.stderr
    (line,) = json_only(scored.stdout)
    assert line["psnr"] > 0 and not line.get("skipped")


def test_list_keys_is_a_result_table_on_stdout_or_json_lines(cli) -> None:
    table = cli("train", "--list-keys")
    assert table.exit_code == 0 and "batch_size" in table.stdout and "batch_size" not in table.stderr
    rows = json_lines(cli("train", "--list-keys", "--json").stdout)
    assert {"key", "type", "default", "help"} <= set(rows[0]) and "filters" in {r["key"] for r in rows}


def test_dry_run_report_is_the_result_on_stdout(cli) -> None:
    args = ("train", "--dataset", "synthetic", "--width", "8", "--depth", "1", "--set", "kernel=3", "--set", "patch=4",
            "--dry-run")  # fmt: skip
    plain = cli(*args)
    assert plain.exit_code == 0 and "trainable" in plain.stdout and "trainable" not in plain.stderr
    assert json_lines(cli(*args, "--json").stdout)[0]["params_trainable"] > 0
