"""Metric loggers and progress outside a terminal: TensorBoard event files with the expected scalar tags,
``--logger none`` writes none, a missing package is one clear error, metrics.jsonl carries the learning
rate and throughput, and a log (not a TTY) gets plain progress lines."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import pytest
from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from spatialmix_cli.cli import progress
from spatialmix_cli.cli.progress import PROGRESS_ENV, PassProgress, duration, line_interval
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.training.hparams import EVENTS_GLOB
from spatialmix_cli.training.loop import TrainingInterrupted, lr_at, train, warmup_steps

from conftest import tiny_config

TINY = ["--set", "arch=convmixer", "--set", "width=16", "--set", "depth=2", "--set", "kernel=3",
        "--set", "patch=4", "--set", "dataset=synthetic", "--set", "subset=128", "--set", "test_subset=64",
        "--set", "epochs=1", "--set", "batch_size=64", "--set", "device=cpu", "--set", "log_every=1"]  # fmt: skip


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_is_the_default_and_writes_the_expected_scalars(tmp_path: Path) -> None:
    run, default = tmp_path / "run", TrainConfig().logger  # tiny_config asks for none; this is the library's
    assert default == "tensorboard"
    train(tiny_config(epochs=2, logger=default), run)  # 256 images / 64 = 4 steps an epoch
    assert len(list(run.glob(EVENTS_GLOB))) == 1  # in the run directory itself: runs are named by it
    found = scalars(run)
    expected = {"train/loss", "train/acc", "train/lr", "train/images_per_s", "epoch/train_loss",
                "epoch/train_acc", "epoch/lr", "epoch/images_per_s", "test/loss", "test/acc"}  # fmt: skip
    assert expected <= set(found)
    assert [step for step, _ in found["train/loss"]] == list(range(1, 9))  # log_every=1
    stored = records(run)
    assert [step for step, _ in found["test/acc"]] == [r["step"] for r in stored] == [4, 8]
    assert [v for _, v in found["test/acc"]] == pytest.approx([r["test_acc"] for r in stored])
    assert all(v > 0 for _, v in found["train/images_per_s"])


def test_metrics_jsonl_records_the_last_steps_lr_and_throughput(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=3, eval_every=0, logger="none")
    train(cfg, tmp_path / "run")
    stored = records(tmp_path / "run")
    total, warmup = 3 * 4, warmup_steps(cfg, 4)
    for record in stored:
        last = lr_at(record["step"] - 1, total=total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule)
        assert record["lr"] == pytest.approx(last)
        assert record["images_per_s"] > 0
    assert [r["test_acc"] is None for r in stored] == [True, True, False]  # eval_every 0: only the last


@pytest.mark.slow  # fast: the default-scalars test
def test_a_resumed_run_appends_to_the_curves_without_repeating_steps(tmp_path: Path) -> None:
    cfg, run = tiny_config(epochs=2, logger="tensorboard"), tmp_path / "run"
    calls = iter(range(100))
    with pytest.raises(TrainingInterrupted):
        train(cfg, run, should_stop=lambda: next(calls) == 5)  # stops after step 6
    train(cfg, run, resume=True)
    steps = [step for step, _ in scalars(run)["train/loss"]]
    assert steps == list(range(1, 9))


@pytest.mark.slow  # fast: the default-scalars test
def test_an_overwritten_run_shows_only_the_new_curves(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(epochs=1, logger="tensorboard"), run)
    train(tiny_config(epochs=1, lr=0.02, logger="tensorboard"), run, overwrite=True)
    found = scalars(run)
    assert [step for step, _ in found["train/loss"]] == [1, 2, 3, 4]
    assert [v for _, v in found["test/acc"]] == pytest.approx([records(run)[-1]["test_acc"]])


def test_logger_none_writes_no_event_files(cli, tmp_path: Path) -> None:
    result = cli("train", *TINY, "--logger", "none", "--out", "run", "--json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "run" / "result.json").is_file()
    assert not list((tmp_path / "run").glob(EVENTS_GLOB))


def test_a_missing_logger_package_is_one_clear_error(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    result = cli("train", *TINY, "--logger", "tensorboard,wandb", "--out", "run")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "pip install wandb" in lines[0]
    assert not (tmp_path / "run").exists()  # refused before the run directory was touched


class FakeRun:
    """What ``wandb.init`` returns, recording what the sink sends (the package itself is not installed)."""

    def __init__(self, **kwargs: object) -> None:
        self.init, self.logged, self.finished = kwargs, [], False
        FakeRun.last = self

    def log(self, values: dict, step: int) -> None:
        self.logged.append((step, values))

    def finish(self) -> None:
        self.finished = True


def test_wandb_gets_the_same_scalars_as_tensorboard(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=FakeRun))
    run = tmp_path / "run"
    train(tiny_config(epochs=1, logger="wandb,tensorboard"), run)
    fake = FakeRun.last
    assert (
        fake.finished
        and fake.init["resume"] == "allow"
        and fake.init["config"]["logger"] == "wandb,tensorboard"
    )
    sent = {(tag, step) for step, values in fake.logged for tag in values}
    assert sent == {(tag, step) for tag, points in scalars(run).items() for step, _ in points}


def test_mlflow_gets_one_run_with_the_config_and_the_metrics(tmp_path: Path, monkeypatch) -> None:
    calls: list[tuple[str, object]] = []
    fake = types.SimpleNamespace(
        start_run=lambda run_name: calls.append(("start", run_name)),
        log_params=lambda params: calls.append(("params", params)),
        log_metrics=lambda values, step: calls.append(("metrics", step)),
        end_run=lambda: calls.append(("end", None)),
    )
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    train(tiny_config(epochs=1, logger="mlflow"), tmp_path / "run")
    assert calls[0] == ("start", "run") and calls[1][0] == "params" and calls[-1] == ("end", None)
    assert [step for what, step in calls if what == "metrics"] == [1, 2, 3, 4, 4]  # 4 steps, then the epoch
    assert not list((tmp_path / "run").glob(EVENTS_GLOB))


def test_logger_is_an_option_of_train_and_unshuffle(cli) -> None:
    for command in ("train", "unshuffle"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "--logger" in result.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tensorbord", "did you mean 'tensorboard'"),
        ("none,tensorboard", "'none' alone"),
        ("tensorboard,tensorboard", "each sink once"),
    ],  # fmt: skip
)
def test_bad_logger_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({"logger": value})


def test_the_logger_is_a_runtime_key() -> None:
    from spatialmix_cli.config.train import RUNTIME_KEYS

    assert "logger" in RUNTIME_KEYS  # a run's identity (and a finished run's status) ignore it


def fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reading of the progress clock is one second after the previous one."""
    ticks = iter(range(1, 10**6))
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(ticks)))


def test_outside_a_terminal_training_prints_plain_progress_lines(cli, monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "0.5")
    fake_clock(monkeypatch)
    result = cli("train", *TINY, "--logger", "none", "--out", "run")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if ": step " in line]
    assert len(lines) == 2  # 128 images / 64 = 2 steps, one line each at this interval
    assert "step 2/2 (100%) epoch 1/1" in lines[-1]
    for part in ("loss ", "acc ", "lr ", " img/s", "eta "):
        assert part in lines[-1]


def test_plain_progress_waits_for_the_interval(cli, monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "3600")
    result = cli("train", *TINY, "--logger", "none", "--out", "run")
    assert result.exit_code == 0, result.stderr
    assert ": step " not in result.stderr


def test_attack_passes_print_plain_progress_lines(monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "0.5")
    fake_clock(monkeypatch)
    out = io.StringIO()
    with PassProgress(Console(file=out, force_terminal=False, width=200)) as bar:
        bar.prefix = "run-a"
        for done in (1, 2, 3):
            bar("AutoAttack ε=8/255", done, 3)
    lines = out.getvalue().splitlines()
    # no pace after the first batch; then 4 s a batch (two clock readings per call) for 1 left, and 0 left
    assert [line.rsplit("eta ", 1)[1] for line in lines] == ["?", "4s", "0s"]
    assert lines[-1] == "  run-a · AutoAttack ε=8/255: batch 3/3  eta 0s"


@pytest.mark.parametrize("raw", ["0", "-1", "soon"])
def test_a_bad_progress_interval_is_refused(monkeypatch, raw: str) -> None:
    monkeypatch.setenv(PROGRESS_ENV, raw)
    with pytest.raises(ConfigError, match=PROGRESS_ENV):
        line_interval()


def test_durations_read_as_people_write_them() -> None:
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_each_plain_training_line_carries_its_own_steps_loss(monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "0.5")
    fake_clock(monkeypatch)  # every step is past the interval
    out = io.StringIO()
    bar = progress.TrainProgress(Console(file=out, force_terminal=False, width=200), "run", epochs=1)
    with bar:
        params = {"params_trainable": 1, "params_frozen": 0}
        bar.on_start(run_dir=Path("run"), total_steps=8, done_steps=0, params=params)
        losses = {}
        for step in range(1, 9):  # log_every=4: the trainer reads the metrics at steps 4 and 8 only
            metrics = None
            if step % 4 == 0:
                losses[step] = 1.0 / step
                metrics = {"train_loss": losses[step], "train_acc": 0.5, "lr": 0.01, "images_per_s": 9.0}
            bar.on_step(global_step=step, epoch=0, metrics=metrics)
    lines = [line for line in out.getvalue().splitlines() if ": step " in line]
    printed = {int(line.split("step ")[1].split("/")[0]): line.split("loss ")[1].split()[0] for line in lines}
    # one line per log step, with that step's loss (not step 5's repeat of step 4's)
    assert printed == {step: f"{loss:.4f}" for step, loss in losses.items()}
