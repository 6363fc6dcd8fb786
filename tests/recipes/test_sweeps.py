"""Sweeps fanned out over several workers: each point is trained once, whoever gets to it first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spatialmix_cli.store.lock import RunDirBusy, claim, claimed_by

RECIPE = """name: fan
out: sweep
base: {dataset: synthetic, subset: 256, test_subset: 32, width: 8, depth: 1, kernel: 3, patch: 4,
       epochs: 2, batch_size: 32, device: cpu}
sweep:
  seed: [0, 1, 2]
"""


def test_a_claimed_run_dir_is_busy_until_released(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert claimed_by(run) is None
    with claim(run):
        assert f"pid {os.getpid()}" in (claimed_by(run) or "")
        with pytest.raises(RunDirBusy, match="being trained by another process"):
            with claim(run):
                pass
    assert claimed_by(run) is None
    with claim(run):  # released: can be claimed again
        pass


def _worker(tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "spatialmix_cli", "train", "--recipe", "r.yaml", "--resume", "--json", *extra],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _results(procs: list[subprocess.Popen]) -> list[dict]:
    rows = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        rows += [json.loads(line) for line in out.splitlines() if line.strip()]
    return rows


@pytest.mark.slow
def test_two_workers_on_one_recipe_train_every_point_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    rows = _results([_worker(tmp_path), _worker(tmp_path)])
    trained = sorted(r["run_dir"] for r in rows if not r.get("skipped"))
    assert trained == ["sweep/seed-0", "sweep/seed-1", "sweep/seed-2"]  # each once, by one worker or other
    for seed in range(3):
        assert (tmp_path / "sweep" / f"seed-{seed}" / "model.safetensors").is_file()


@pytest.mark.slow
def test_two_concurrent_index_runs_of_the_same_point_train_it_once(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    rows = _results([_worker(tmp_path, "--index", "1"), _worker(tmp_path, "--index", "1")])
    assert len(rows) == 2 and sum(not r.get("skipped") for r in rows) == 1
    assert json.loads((tmp_path / "sweep" / "seed-1" / "result.json").read_text())["seed"] == 1
