"""A SIGINT or SIGTERM during `spatialmix attack --recipe` stops it between batches: the checkpoints
attacked before keep their attacks.jsonl rows whole, the one being attacked writes none, the exit code is the
signal's and one stderr line says how to go on; that command then finishes the job. A real signal, sent to
this process right after the first checkpoint's rows were appended."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import spatialmix_cli.commands.attack as attack_commands

from conftest import json_lines

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\nout: runs/r\nbase: {arch: convmixer, width: 8, depth: 1, kernel: 3, patch: 4, dataset: "
        "synthetic, subset: 64, test_subset: 32, epochs: 1, batch_size: 32, device: cpu, logger: none}\n"
        "sweep: {seed: [0, 1]}\nattack: {method: fgsm, eps: [1/255], n: 16, batch_size: 16, checks: false}\n"
    )
    return recipe


@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_an_interrupted_recipe_attack_keeps_finished_rows_and_says_how_to_go_on(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum, sigterm_guard
) -> None:
    recipe, real = _recipe(tmp_path), attack_commands.record

    def record_then_signal(run_dir, found):  # noqa: ANN001
        path = real(run_dir, found)
        monkeypatch.setattr(attack_commands, "record", real)  # one signal only
        os.kill(os.getpid(), signum)
        return path

    monkeypatch.setattr(attack_commands, "record", record_then_signal)
    stopped = cli("attack", "--recipe", recipe, "--json")
    assert stopped.exit_code == CODES[signum], stopped.stderr
    (line,) = [x for x in stopped.stderr.splitlines() if "to go on" in x]
    assert line.startswith("stopped after 1 of 2 checkpoint(s) (their rows are kept in attacks.jsonl)")
    assert "run the same command again" in line
    (printed,) = json_lines(stopped.stdout)  # the finished checkpoint's row, as it was recorded
    rows = (tmp_path / "runs/r/seed-0/attacks.jsonl").read_text()
    assert rows.endswith("\n") and [json.loads(x) for x in rows.splitlines()] == [printed]
    assert not (tmp_path / "runs/r/seed-1/attacks.jsonl").exists()  # the interrupted one wrote nothing
    again = cli("attack", "--recipe", recipe, "--json")
    assert again.exit_code == 0, again.stderr
    assert [Path(r["checkpoint"]).parent.name for r in json_lines(again.stdout)] == ["seed-0", "seed-1"]
    assert (tmp_path / "runs/r/seed-1/attacks.jsonl").is_file()
