"""Data-parallel training under torchrun on the gloo backend (CPU): two processes must train the model a
single process trains on the same global batch, and only rank 0 may write."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist
from torch.optim.swa_utils import update_bn

from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import load_model, read_metadata
from spatialmix_cli.training import distributed
from spatialmix_cli.training.callbacks import Callbacks
from spatialmix_cli.training.distributed import Dist, from_env
from spatialmix_cli.training.loop import (
    TrainingInterrupted,
    build_model,
    build_optimizer,
    lr_at,
    train,
    warmup_steps,
)
from spatialmix_cli.training.precise_bn import IMAGES, PURPOSE
from spatialmix_cli.training.prepare import prepare_data
from spatialmix_cli.training.runtime import to_float

from conftest import tiny_config

ARGS = ["--dataset", "synthetic", "--set", "subset=256", "--set", "test_subset=64", "--width", "16", "--depth", "2",
        "--set", "kernel=3", "--set", "patch=4", "--batch-size", "64", "--epochs", "3", "--learn", "chans", "--seed", "5",
        "--set", "log_every=1"]  # fmt: skip


def _torchrun(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "spatialmix_cli", "train", *args]  # fmt: skip
    return subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ddp")
    proc = _torchrun([*ARGS, "--out", "run", "--json"], root)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return root, out


def _reference(world: int = 2) -> torch.nn.Module:
    """What DDP computes, written out in one process: each global batch split into the ranks' shares
    ([r::world]); each share's mean loss through its own BatchNorm statistics; gradients averaged; the
    BatchNorm running statistics of rank 0's share (DDP broadcasts rank 0's buffers at every step), until
    the precise-BatchNorm pass recomputes them (:func:`_precise_bn`)."""
    cfg = tiny_config(subset=256, test_subset=64, width=16, depth=2, kernel=3, patch=4, batch_size=64,
                      epochs=3, learn="chans", seed=5)  # fmt: skip
    data = prepare_data(cfg, torch.device("cpu"))
    model = build_model(cfg, data.info)
    opt = build_optimizer(cfg, model)
    steps = data.train.steps_per_epoch
    total, warmup = cfg.epochs * steps, warmup_steps(cfg, steps)
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        for images, labels in data.train.epoch(epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total=total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule)
            x, y = data.task.inputs_targets(to_float(images), labels)
            opt.zero_grad(set_to_none=True)
            rank0_buffers = None
            for rank in range(world):
                loss = data.task.loss(model(x[rank::world]), y[rank::world], cfg.label_smoothing) / world
                loss.backward()
                if rank == 0:
                    rank0_buffers = {k: v.clone() for k, v in model.named_buffers()}
            with torch.no_grad():
                for k, v in model.named_buffers():
                    v.copy_(rank0_buffers[k])
            opt.step()
            step += 1
    _precise_bn(model, data, world)
    return model


def _precise_bn(model: torch.nn.Module, data, world: int) -> None:
    """The precise-BatchNorm pass of a 12-step run (precise_bn auto): each rank averages the statistics of
    its shares of the pass's batches (update_bn), then the ranks average their running means and variances."""
    replicas = [copy.deepcopy(model) for _ in range(world)]
    for rank, replica in enumerate(replicas):
        batches = data.train.sample(IMAGES, PURPOSE)
        update_bn((data.task.inputs_targets(to_float(x), y)[0][rank::world] for x, y in batches), replica)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            shares = torch.stack([dict(r.named_buffers())[name] for r in replicas])
            buffer.copy_(shares.float().mean(0) if "running_" in name else shares[0])


@pytest.mark.slow
def test_two_gloo_processes_train_what_one_process_trains_on_the_same_global_batch(ddp_run) -> None:
    root, out = ddp_run
    ddp = load_model(root / "run" / "model.safetensors").state_dict()
    ref = _reference().state_dict()
    frozen = [k for k in ref if "fn.0.weight" in k or k.startswith("stem.0")]
    assert frozen
    for key in ref:
        torch.testing.assert_close(ddp[key], ref[key], rtol=1e-4, atol=1e-5, msg=key)
        if key in frozen:  # frozen filters: identical on every rank, never all-reduced
            assert torch.equal(ddp[key], ref[key]), key


@pytest.mark.slow
def test_only_rank_0_writes_and_reports(ddp_run) -> None:
    root, out = ddp_run
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(rows) == 1 and rows[0]["run_dir"] == "run"
    assert sorted(p.name for p in root.iterdir()) == ["run"]
    files = sorted(p.name for p in (root / "run").iterdir())
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    assert len(events) == 1  # TensorBoard's event file: one writer, rank 0
    assert [f for f in files if f not in events] == [".lock", "config.yaml", "last.safetensors", "metrics.jsonl",
                                                      "model.safetensors", "result.json", "steps.jsonl"]  # fmt: skip
    assert len((root / "run" / "metrics.jsonl").read_text().splitlines()) == 3  # one line per epoch, once
    steps = [json.loads(line)["step"] for line in (root / "run" / "steps.jsonl").read_text().splitlines()]
    assert steps and steps == sorted(set(steps))  # each logged step once: rank 0 alone writes them


@pytest.mark.slow
def test_an_interrupted_distributed_run_resumes_to_the_same_weights(ddp_run, tmp_path: Path) -> None:
    root, _ = ddp_run
    proc = _torchrun([*ARGS, "--out", "run"], tmp_path)
    deadline = time.time() + 180
    while not (tmp_path / "run" / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both workers, which stop at the same step
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err
    finished = (tmp_path / "run" / "model.safetensors").exists()
    resumed = _torchrun([*ARGS, "--out", "run", "--resume", "--json"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads(out)["resumed"] is True or finished
    a = load_model(root / "run" / "model.safetensors").state_dict()
    b = load_model(tmp_path / "run" / "model.safetensors").state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


STOPPING = """
import json, sys
import torch
from spatialmix_cli.training import tasks
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.training.distributed import from_env
from spatialmix_cli.training.loop import TrainingInterrupted, train
from spatialmix_cli.training.state import TrainingDiverged

cfg, rank = TrainConfig.from_dict(json.loads(sys.argv[1])), from_env().rank

def outcome(run_dir, **kwargs):
    try:
        train(cfg, run_dir, **kwargs)
        return "finished"
    except TrainingInterrupted as stop:
        return f"stopped at epoch {stop.epoch}, step {stop.step}"
    except TrainingDiverged as error:
        return f"diverged: {error}"

rows = {"stop": outcome("stopped", should_stop=lambda: rank == 1)}  # only rank 1 is asked to stop
rows["resume"] = outcome("stopped", resume=True)
loss, steps = tasks.Classify.loss, []

def poisoned(self, output, targets, label_smoothing=0.0):  # rank 1's training loss: NaN from step 5 on
    steps.extend([1] if torch.is_grad_enabled() else [])
    value = loss(self, output, targets, label_smoothing)
    return value * float("nan") if rank == 1 and len(steps) >= 5 and torch.is_grad_enabled() else value

tasks.Classify.loss = poisoned
rows["nan"] = outcome("diverged")
# One write per line: with PYTHONUNBUFFERED, print() writes the text and its newline separately, and the two
# ranks' lines could interleave on the shared pipe; a single write under PIPE_BUF bytes cannot.
sys.stdout.write(json.dumps({"rank": rank, **rows}) + "\\n")
"""


@pytest.mark.slow
def test_a_stop_asked_of_one_rank_or_a_nan_on_one_rank_ends_every_rank_at_the_same_log_step(
    ddp_run, tmp_path
) -> None:
    """ARGS' run, logging every 3 steps (4 steps an epoch). Rank 1 alone asked to stop from the start: both
    ranks stop after step 3 (the first log step, where they agree), and the resumed run ends with the
    weights of the uninterrupted one. Rank 1's loss NaN from step 5: both ranks stop at log step 6 with
    the same message, and the last good state (epoch 1's) is kept for a resume."""
    root, _ = ddp_run
    keys = {"dataset": "synthetic", "subset": 256, "test_subset": 64, "width": 16, "depth": 2, "kernel": 3,
            "patch": 4, "batch_size": 64, "epochs": 3, "learn": "chans", "seed": 5, "log_every": 3,
            "logger": "none"}  # fmt: skip
    (tmp_path / "stopping.py").write_text(STOPPING)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "stopping.py", json.dumps(keys)]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = sorted((json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")), key=str)
    assert [row.pop("rank") for row in rows] == [0, 1] and rows[0] == rows[1]
    assert rows[0]["stop"] == "stopped at epoch 1, step 3" and rows[0]["resume"] == "finished"
    assert rows[0]["nan"].startswith(
        "diverged: training loss became nan at epoch 2, step 2; the last good state"
    )
    kept = read_metadata(tmp_path / "diverged" / "last.safetensors")["progress"]
    assert (kept["epoch"], kept["global_step"]) == (1, 4)
    a = load_model(root / "run" / "model.safetensors").state_dict()
    b = load_model(tmp_path / "stopped" / "model.safetensors").state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_environment_parsing_and_batch_check() -> None:
    assert from_env({}) is None and from_env({"WORLD_SIZE": "1"}) is None
    assert from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}) == Dist(2, 4, 0)
    with pytest.raises(ConfigError, match="torchrun"):
        from_env({"WORLD_SIZE": "2"})
    from spatialmix_cli.training.distributed import check_batch, wrap

    with pytest.raises(ConfigError, match="divisible"):
        check_batch(Dist(0, 3, 0), 64)
    with pytest.raises(ConfigError, match="distributed"):
        wrap(torch.nn.Linear(2, 2), None, torch.device("cpu"), sync_bn=True)


@pytest.mark.slow
def test_a_torchrun_job_trains_every_point_of_a_recipe(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: dd\nout: sweep\nbase: {dataset: synthetic, subset: 128, test_subset: 32, width: 8, depth: 1,\n"
        "       kernel: 3, patch: 4, epochs: 1, batch_size: 32, device: cpu}\nsweep: {seed: [0, 1]}\n"
    )
    (tmp_path / "sweep" / "seed-0").mkdir(parents=True)  # point 0 is "held" by another process
    import fcntl

    held = os.open(tmp_path / "sweep" / "seed-0" / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "spatialmix_cli", "train", "--recipe", "r.yaml", "--json"]  # fmt: skip
        done = subprocess.run(cmd, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
    finally:
        os.close(held)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [r.get("busy", False) for r in rows] == [True, False]  # both ranks skipped the held point
    assert (tmp_path / "sweep" / "seed-1" / "model.safetensors").is_file()
    assert not (tmp_path / "sweep" / "seed-0" / "config.yaml").exists()


# --- when the ranks agree on stopping: at log steps and at an epoch's last step, not at every step ----------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agreements(Callbacks):
    """Records the global step after which each agreement on stopping (an all-reduce) took place."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.at: list[int] = []

    def on_start(self, *, run_dir: Path, total_steps: int, done_steps: int, params: dict) -> None:
        self.steps, self.at = [done_steps], []

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None:
        self.steps.append(global_step)


@pytest.fixture
def one_rank_job(monkeypatch: pytest.MonkeyPatch) -> Agreements:
    """This process as a torchrun job of one rank (gloo): the trainer takes the distributed path (DDP, the
    ranks' agreements) in-process, in a second, without starting workers."""
    monkeypatch.setattr(distributed, "from_env", lambda env=None: Dist(0, 1, 0))
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "WORLD_SIZE": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen, any_rank = Agreements(), distributed.any_rank

    def agreeing(flag: bool, device: torch.device) -> bool:
        seen.at.append(seen.steps[-1] + 1)  # the step that has run and not yet reached on_step
        return any_rank(flag, device)

    monkeypatch.setattr(distributed, "any_rank", agreeing)
    yield seen
    if tdist.is_initialized():
        tdist.destroy_process_group()


def test_ranks_agree_on_stopping_at_log_steps_and_epoch_ends_only(one_rank_job, tmp_path: Path) -> None:
    """3 steps an epoch, a log every 4: the ranks agree after steps 3 (the epoch's last), 4 (a log step)
    and 6, not after every step; a stop request made all along ends the run at the first of them, saved
    so that the resumed run ends with the weights of an uninterrupted one."""
    seen = one_rank_job
    cfg = tiny_config(subset=192, batch_size=64, epochs=2, log_every=4, logger="none")
    train(cfg, tmp_path / "whole", callbacks=seen)
    assert seen.at == [3, 4, 6]
    with pytest.raises(TrainingInterrupted) as stopped:
        train(cfg, tmp_path / "stopped", callbacks=seen, should_stop=lambda: True)
    assert seen.at == [3] and (stopped.value.epoch, stopped.value.step) == (1, 3)
    assert read_metadata(tmp_path / "stopped" / "last.safetensors")["progress"]["global_step"] == 3
    assert train(cfg, tmp_path / "stopped", resume=True, callbacks=seen).resumed
    assert seen.at == [4, 6]
    whole = load_model(tmp_path / "whole" / "model.safetensors").state_dict()
    resumed = load_model(tmp_path / "stopped" / "model.safetensors").state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
