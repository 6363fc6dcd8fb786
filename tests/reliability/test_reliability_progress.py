"""Reliability, round three (issue #31): damaged progress in ``last.safetensors`` (class 5) and sizes stored in
a checkpoint's metadata (class 6). Each is exit 2 with one ``error:`` line naming the file, empty stdout and
nothing on disk changed.

Each case is a row of docs/reliability.md; keep the two in step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from spatialmix_cli.cli.app import app
from spatialmix_cli.store.checkpoint.validate import history_problem, progress_fit_problem

_TINY = ["--dataset", "synthetic", "--set", "subset=64", "--set", "test_subset=32", "--width", "8", "--depth", "1",
         "--set", "kernel=3", "--set", "patch=4", "--epochs", "2", "--learn", "chans", "--device", "cpu",
         "--logger", "none"]  # fmt: skip
_ATTACK = ["--method", "fgsm", "--n", "16", "--batch-size", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny run of two epochs, trained through the CLI (its last.safetensors: epoch 2, step 0)."""
    run = tmp_path_factory.mktemp("progress") / "run"
    result = CliRunner().invoke(app, ["train", *_TINY, "--out", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return run


def _edit(src: Path, dest: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """``src`` rewritten to ``dest`` with ``edit`` applied to its spatialmix metadata (tensors as they are)."""
    with safe_open(str(src), "pt") as f:
        meta, tensors = json.loads(f.metadata()["spatialmix"]), {k: f.get_tensor(k) for k in f.keys()}
    edit(meta)
    save_file(tensors, str(dest), metadata={"spatialmix": json.dumps(meta), "format": "pt"})


def _hashes(root: Path) -> dict[str, tuple[str | None, int]]:
    """Every path under ``root``: its content hash (None for a folder) and modification time."""
    return {
        str(p.relative_to(root)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None,
            p.stat().st_mtime_ns,
        )
        for p in sorted(root.rglob("*"))
    }


def _refused(cli: Callable[..., Any], root: Path, args: list[Any], *names: str) -> str:
    """Exit 2, one ``error:`` line naming every one of ``names``, empty stdout, every file under ``root``
    byte-identical and untouched (same mtime)."""
    before = _hashes(root)
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0] and all(n in lines[0] for n in names), lines[0]
    assert result.stdout == ""
    assert _hashes(root) == before, "a refused command changed files on disk"
    return lines[0]


def _unfinished(tmp_path: Path, trained: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the trained run without its result and weights (so --resume continues it), its
    last.safetensors' progress edited."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for name in ("result.json", "model.safetensors"):
        (run / name).unlink()
    _edit(trained / "last.safetensors", run / "last.safetensors", edit)
    return run


def _one_epoch_done(meta: dict[str, Any], *, step: int = 0) -> None:
    """Progress of the same run stopped ``step`` steps into its second epoch (the writer's own numbers)."""
    steps = meta["history"][0]["step"]
    meta["progress"].update(epoch=1, step=step, global_step=steps + step)
    meta["history"] = meta["history"][:1]


def _no_field(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(meta: dict[str, Any]) -> None:
        for row in meta["history"]:
            del row[key]

    return edit


DAMAGED_PROGRESS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "history-empty": (lambda m: m.update(history=[]), "'history' has 0 rows for 2 finished epochs"),
    "history-short": (lambda m: m["history"].pop(), "'history' has 1 rows for 2 finished epochs"),
    "step-far-beyond-the-epoch": (lambda m: _one_epoch_done(m, step=10**6), "'progress.step' is 1000000"),
    "step-after-the-last-epoch": (lambda m: m["progress"].update(step=1), "after the run's last epoch"),
    "global-step-off": (lambda m: m["progress"].update(global_step=999), "'progress.global_step' is 999"),
    "epoch-beyond-epochs": (lambda m: m["progress"].update(epoch=3), "3 epochs are done of a 2-epoch run"),
    "row-without-train-loss": (_no_field("train_loss"), "'history[0].train_loss'"),
    "row-without-seconds": (_no_field("seconds"), "'history[0].seconds'"),
    "row-without-test-loss": (_no_field("test_loss"), "'history[0]' has no 'test_loss'"),
    "row-without-epoch": (_no_field("epoch"), "'history[0].epoch' must be 1"),
    "row-epoch-out-of-order": (lambda m: m["history"].reverse(), "'history[0].epoch' must be 1"),
    "row-loss-as-text": (lambda m: m["history"][1].update(train_loss="low"), "'history[1].train_loss'"),
    "row-step-not-the-epochs-end": (lambda m: m["history"][0].update(step=7), "'history[0].step' is 7"),
}


@pytest.mark.parametrize("case", list(DAMAGED_PROGRESS))
def test_resume_from_progress_that_does_not_fit_the_run_is_refused_before_anything_is_rewritten(
    cli, tmp_path: Path, trained: Path, case: str
) -> None:
    edit, message = DAMAGED_PROGRESS[case]
    run = _unfinished(tmp_path, trained, edit)
    line = _refused(cli, tmp_path, ["train", *_TINY, "--resume", "--out", run], str(run / "last.safetensors"))
    assert message in line and "--overwrite" in line, line


@pytest.mark.parametrize("step", [0, 1])
def test_progress_the_run_could_have_saved_still_resumes(
    cli, tmp_path: Path, trained: Path, step: int
) -> None:
    """The check refuses only what the writer could not have written: a state one epoch in (at its start,
    or after its last step, saved by a stop there) resumes and finishes."""
    run = _unfinished(tmp_path, trained, lambda m: _one_epoch_done(m, step=step))
    result = cli("train", *_TINY, "--resume", "--out", run, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resumed"] is True and (run / "model.safetensors").is_file()


def _written(epochs: int, steps: int, epoch: int, step: int) -> dict[str, Any]:
    """The progress and history the trainer writes ``step`` steps into epoch ``epoch`` (0-based)."""
    rows = [
        {"epoch": i + 1, "step": (i + 1) * steps, "train_loss": 1.0, "train_acc": 0.5, "test_loss": None,
         "test_acc": None, "seconds": float(i), "lr": 0.1, "images_per_s": 10.0}
        for i in range(epoch)
    ]  # fmt: skip
    progress = {"epoch": epoch, "step": step, "global_step": epoch * steps + step, "seconds": float(epoch)}
    return {"progress": progress, "history": rows}


@settings(max_examples=200, deadline=None)
@given(data=st.data(), epochs=st.integers(1, 6), steps=st.integers(1, 50))
def test_every_state_the_writer_makes_fits_and_a_step_beyond_the_epoch_never_does(
    data: st.DataObject, epochs: int, steps: int
) -> None:
    epoch = data.draw(st.integers(0, epochs))
    step = 0 if epoch == epochs else data.draw(st.integers(0, steps))
    meta = _written(epochs, steps, epoch, step)
    assert history_problem(meta["history"]) is None
    assert progress_fit_problem(meta, epochs, steps) is None
    beyond = data.draw(st.integers(steps + 1, 10**9))
    meta["progress"].update(step=beyond, global_step=epoch * steps + beyond)
    assert progress_fit_problem(meta, epochs, steps) is not None
    rows = data.draw(st.integers(0, epochs + 1).filter(lambda n: n != epoch))
    meta = {**_written(epochs, steps, epoch, step), "history": _written(epochs, steps, rows, 0)["history"]}
    assert progress_fit_problem(meta, epochs, steps) is not None  # one history row per finished epoch


STORED_SIZES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "dataset-image-size-1": (lambda m: m["dataset"].update(image_size=1), "dataset.image_size"),
    "config-image-size-1": (lambda m: m["config"].update(image_size=1), "config.image_size"),
    "config-image-size-huge": (lambda m: m["config"].update(image_size=5000), "config.image_size"),
    "config-kernel-5000": (lambda m: m["config"].update(kernel=5000), "config.kernel"),
    "model-kernel-5000": (lambda m: m["model"]["kwargs"].update(kernel=5000), "'kernel'"),
}


@pytest.mark.parametrize("command", ["eval", "info", "attack"])
@pytest.mark.parametrize("case", list(STORED_SIZES))
def test_sizes_in_checkpoint_metadata_are_checked_by_the_options_bounds(
    cli, tmp_path: Path, trained: Path, case: str, command: str
) -> None:
    edit, key = STORED_SIZES[case]
    ckpt = tmp_path / "ckpt.safetensors"
    _edit(trained / "model.safetensors", ckpt, edit)
    extra = {"eval": ["--device", "cpu"], "info": [], "attack": _ATTACK}[command]
    _refused(cli, tmp_path, [command, ckpt, *extra], str(ckpt), key)
