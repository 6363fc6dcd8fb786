"""Data-parallel training under torchrun on the gloo backend (CPU): two processes must train the model a
single process trains on the same global batch, and only rank 0 may write."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.optim.swa_utils import update_bn

from spatialmix_cli.checkpoint import load_model
from spatialmix_cli.data import prepare_data
from spatialmix_cli.distributed import Dist, from_env
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.precise_bn import IMAGES, PURPOSE
from spatialmix_cli.runtime import to_float
from spatialmix_cli.training import build_model, build_optimizer, lr_at, warmup_steps

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
                                                      "model.safetensors", "result.json"]  # fmt: skip
    assert len((root / "run" / "metrics.jsonl").read_text().splitlines()) == 3  # one line per epoch, once


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


def test_environment_parsing_and_batch_check() -> None:
    assert from_env({}) is None and from_env({"WORLD_SIZE": "1"}) is None
    assert from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}) == Dist(2, 4, 0)
    with pytest.raises(ConfigError, match="torchrun"):
        from_env({"WORLD_SIZE": "2"})
    from spatialmix_cli.distributed import check_batch, wrap

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
