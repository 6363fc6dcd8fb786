"""Data-parallel training under ``torchrun`` (DistributedDataParallel), on ``gloo`` (CPU) or ``nccl`` (GPU).

torchrun sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; with ``WORLD_SIZE`` > 1 the trainer joins the
process group, gives each rank a disjoint shard of every global batch (``batch_size`` stays the global
batch, so a recipe means the same on 1 or N processes), lets DDP average the gradients, and leaves all
writing (run directory, checkpoints, metrics, progress) to rank 0. Frozen spatial filters are built from
the same seed on every rank and have no gradient, so DDP never all-reduces them.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env(env: dict[str, str] | None = None) -> Dist | None:
    """The torchrun job this process belongs to, or None when it runs alone."""
    env = dict(os.environ) if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return Dist(int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError):
        raise ConfigError(
            "WORLD_SIZE is set but RANK / LOCAL_RANK are missing or not integers; start distributed runs "
            "with torchrun (torchrun --nproc-per-node N -m spatialmix_cli train ...)"
        ) from None


def is_main() -> bool:
    """Whether this process is the one that reports (rank 0, or a single-process run)."""
    dist = from_env()
    return dist is None or dist.main


def device_for(dist: Dist | None, device: torch.device) -> torch.device:
    """One GPU per rank (``cuda:LOCAL_RANK``); CPU ranks share the CPU."""
    if dist is not None and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


@contextlib.contextmanager
def process_group(dist: Dist | None, device: torch.device) -> Iterator[None]:
    """Make sure this process has joined the default process group (a no-op for single-process runs).

    The group is joined once per process and left at exit, not per run: a recipe trains many points in
    one torchrun job, and re-creating the default group reuses its store keys, which makes gloo connect
    to the previous group's stale addresses (seen here as flaky "Connection refused")."""
    if dist is not None and not tdist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        tdist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
        atexit.register(_leave)
    yield


def _leave() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()


def check_batch(dist: Dist | None, batch_size: int) -> None:
    if dist is not None and batch_size % dist.world:
        raise ConfigError(
            f"batch_size {batch_size} (the global batch) must be divisible by the {dist.world} processes"
        )


def wrap(model: nn.Module, dist: Dist | None, device: torch.device, sync_bn: bool) -> nn.Module:
    """The module the training step calls: the model itself, or DDP around it (optionally with
    SyncBatchNorm, which PyTorch supports on GPUs only). Checkpoints always save the bare model."""
    if dist is None:
        if sync_bn:
            raise ConfigError("sync_bn (--set sync_bn=true) only makes sense for distributed runs (torchrun)")
        return model
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError(
                "sync_bn (--set sync_bn=true) needs GPUs: PyTorch's SyncBatchNorm runs on CUDA only"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (so all ranks stop at the same step)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item())


def agree_to_stop(want: Callable[[], bool], dist: Dist | None, device: torch.device, *, due: bool) -> bool:
    """Whether the run stops after this step. Alone: whenever ``want()`` says so (asked every step, which
    costs nothing). Distributed: only at ``due`` steps (the trainer's log steps and an epoch's last step),
    and then on every rank if any rank wants to, so all ranks stop at the same step; between them nobody
    is asked, since each agreement is an all-reduce that waits for every rank (and syncs the device)."""
    if dist is None:
        return want()
    return due and any_rank(want(), device)


def sum_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Element-wise sums over ranks of scalar tensors (the running sums of loss, score and image count)."""
    keys = list(values)
    t = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    tdist.all_reduce(t)
    return dict(zip(keys, t.unbind(), strict=True))


def average_over_ranks(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor, in place, by its mean over the ranks (BatchNorm statistics after a precise-BN
    pass: every rank's shares were the same size, so the mean of the ranks' means is the global mean)."""
    world = tdist.get_world_size()
    for t in tensors:
        tdist.all_reduce(t)
        t.div_(world)


def broadcast_choice(
    choice: str | None, choices: tuple[str, ...], dist: Dist | None, device: torch.device
) -> str | None:
    """Rank 0's ``choice`` (one of ``choices``, or None for "failed") on every rank. Sent as an index in
    a tensor rather than with ``broadcast_object_list``, which pickles."""
    if dist is None:
        return choice
    code = torch.tensor([choices.index(choice) if choice in choices else -1], device=device)
    tdist.broadcast(code, src=0)
    index = int(code.item())
    return choices[index] if index >= 0 else None


def barrier(dist: Dist | None) -> None:
    if dist is not None:
        tdist.barrier()
