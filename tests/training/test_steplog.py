"""steps.jsonl: a line per logged step of every run (whatever the logger), with the fractional epoch and
the loss and metric over the images since the previous logged step; a resume drops the lines after the
step it starts from; an overwrite starts the file again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spatialmix_cli.config.runfiles import METRICS_FILE, RUN_FILES, STEPS_FILE
from spatialmix_cli.training.loop import TrainingInterrupted, lr_at, train, warmup_steps
from spatialmix_cli.training.steplog import StepLog, keep_until, window

from conftest import json_lines, tiny_config


def lines(run: Path, name: str = STEPS_FILE) -> list[dict]:
    return json_lines((run / name).read_text())


def test_a_line_per_logged_step_with_the_fractional_epoch(tmp_path: Path) -> None:
    cfg, run = tiny_config(epochs=2, subset=512, log_every=3, logger="none"), tmp_path / "run"
    train(cfg, run)  # 512 images / 64 = 8 steps an epoch, 16 in all: logged at 3, 6, ..., 15
    rows, per_epoch, total = lines(run), 8, 16
    assert [r["step"] for r in rows] == list(range(3, total + 1, 3))
    assert len(rows) == total // cfg.log_every
    assert [r["epoch"] for r in rows] == pytest.approx([r["step"] / per_epoch for r in rows])
    warmup = warmup_steps(cfg, per_epoch)
    for row in rows:
        assert set(row) == {"step", "epoch", "train_loss", "train_acc", "lr", "images"}
        expected = lr_at(row["step"] - 1, total=total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule)
        assert row["lr"] == pytest.approx(expected)


def test_an_epochs_windows_add_up_to_its_metrics_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(epochs=2, log_every=2), run)  # 4 steps an epoch of 64 images: windows of 2 steps
    rows = lines(run)
    assert [r["images"] for r in rows] == [128] * 4  # each window starts at the previous logged step
    for record in lines(run, METRICS_FILE):
        mine = [r for r in rows if record["epoch"] - 1 < r["epoch"] <= record["epoch"]]
        assert len(mine) == 2 and mine[-1]["step"] == record["step"]
        images = sum(r["images"] for r in mine)
        for key in ("train_loss", "train_acc"):
            assert sum(r[key] * r["images"] for r in mine) / images == pytest.approx(record[key])
    assert rows[2]["train_loss"] != pytest.approx(rows[1]["train_loss"])  # the epochs do not run on


def test_a_window_of_psnr_is_that_of_its_mean_squared_error() -> None:
    before = {"loss": 2.0, "score": 0.02, "count": 2.0}
    found = window({"loss": 5.0, "score": 0.05, "count": 5.0, "train_psnr": 0.0}, before)
    assert found == pytest.approx({"train_loss": 1.0, "train_psnr": 20.0, "images": 3})
    assert window({"loss": 4.0, "score": 3.0, "count": 4.0, "train_acc": 0.75}, {})["train_acc"] == 0.75


def test_a_resume_drops_the_lines_after_the_saved_step(tmp_path: Path) -> None:
    cfg, run = tiny_config(epochs=2), tmp_path / "run"
    calls = iter(range(100))
    with pytest.raises(TrainingInterrupted):
        train(cfg, run, should_stop=lambda: next(calls) == 4)  # stops after step 5, saved there
    assert [r["step"] for r in lines(run)] == [1, 2, 3, 4, 5]
    # what a process killed after its last save had logged: dropped when the run resumes
    killed = [{"step": s, "epoch": s / 4, "train_loss": 99.0} for s in (6, 7)]
    (run / STEPS_FILE).write_text(
        (run / STEPS_FILE).read_text() + "".join(json.dumps(r) + "\n" for r in killed)
    )
    train(cfg, run, resume=True)
    rows = lines(run)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all(r["train_loss"] != 99.0 for r in rows)


def test_an_overwrite_starts_the_steps_again(tmp_path: Path) -> None:
    assert STEPS_FILE in RUN_FILES  # removed by --overwrite with the other run files
    run = tmp_path / "run"
    train(tiny_config(epochs=1, log_every=1), run)
    train(tiny_config(epochs=1, log_every=2, lr=0.02), run, overwrite=True)
    assert [r["step"] for r in lines(run)] == [2, 4]


def test_keep_until_drops_later_and_torn_lines_and_rewrites_only_then(tmp_path: Path) -> None:
    path = tmp_path / STEPS_FILE
    keep_until(path, 3)  # no file: nothing made
    assert not path.exists()
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)))
    before = path.stat().st_mtime_ns, path.stat().st_ino
    keep_until(path, 3)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before  # nothing to drop: not rewritten
    path.write_text(path.read_text() + json.dumps({"step": 4}) + "\n" + '{"step": 5, "tra')
    keep_until(path, 3)
    assert [r["step"] for r in json_lines(path.read_text())] == [1, 2, 3]
    keep_until(path, 0)
    assert path.read_text() == ""


def test_lines_wait_for_the_epochs_end_or_close_and_are_appended(tmp_path: Path) -> None:
    log = StepLog(epochs=2, flush_seconds=3600.0)
    log.on_start(run_dir=tmp_path, total_steps=8, done_steps=0, params={})
    sums = {"loss": 2.0, "score": 1.0, "count": 2.0, "train_acc": 0.5, "lr": 0.1, "images_per_s": 5.0}
    log.on_step(global_step=1, epoch=0, metrics=sums)
    log.on_step(global_step=2, epoch=0, metrics=None)  # not a log step
    assert not (tmp_path / STEPS_FILE).exists()
    log.on_epoch_end({})
    inode = (tmp_path / STEPS_FILE).stat().st_ino
    log.on_step(global_step=6, epoch=1, metrics={**sums, "loss": 1.0, "lr": 0.05})  # a new epoch's sums
    log.close()
    assert (tmp_path / STEPS_FILE).stat().st_ino == inode  # appended to, not rewritten
    assert lines(tmp_path) == [
        {"step": 1, "epoch": 0.25, "train_loss": 1.0, "train_acc": 0.5, "images": 2, "lr": 0.1},
        {"step": 6, "epoch": 1.5, "train_loss": 0.5, "train_acc": 0.5, "images": 2, "lr": 0.05},
    ]
