"""A training run's state between steps: where it is (:class:`Progress`), how it is saved to and restored
from ``last.safetensors`` (resume at the exact step), its running sums, the divergence checks, and the
:class:`Callbacks` hooks that see it (progress bars, metric loggers)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config.runfiles import LAST_FILE, MODEL_FILE
from ..config.train import TrainConfig
from ..data.info import DatasetInfo
from ..errors import SpatialmixError
from ..models.timm_models import provenance
from ..store.checkpoint import check_resume, load_into, save_checkpoint
from ..store.checkpoint.validate import LEGACY_SUMS
from ..store.rundir import read_result
from . import distributed
from .psnr import PSNR_CONVENTION
from .tasks import Task


class TrainingDiverged(SpatialmixError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


def _zero_sums() -> dict[str, float]:
    return {"loss": 0.0, "score": 0.0, "count": 0.0}


@dataclass
class Progress:
    """Where a run is; saved in last.safetensors so a resumed run continues at the exact step."""

    epoch: int = 0
    step: int = 0  # steps done in ``epoch``
    global_step: int = 0
    seconds: float = 0.0  # training time so far (evaluation excluded)
    sums: dict[str, float] = field(default_factory=_zero_sums)
    history: list[dict[str, Any]] = field(default_factory=list)

    def next_epoch(self, record: dict[str, Any]) -> None:
        """The epoch is done: its ``record`` joins the history, the next one starts from zero."""
        self.epoch, self.step = self.epoch + 1, 0
        self.sums = _zero_sums()
        self.history.append(record)

    def epoch_seconds(self) -> float:
        """Training seconds of the current epoch saved so far (across a resume), from the cumulative ones."""
        return self.seconds - (self.history[-1]["seconds"] if self.history else 0.0)


def meta(cfg: TrainConfig, info: DatasetInfo, progress: Progress) -> dict[str, Any]:
    """The checkpoint metadata of a run at ``progress``: model, dataset, config, progress and history."""
    kwargs = {k: v for k, v in cfg.model_kwargs(info).items() if v is not None}
    return {
        "model": {"name": cfg.arch, "kwargs": kwargs, **provenance(cfg.arch, kwargs)},
        "dataset": info.to_dict(),
        "config": cfg.to_dict(),
        "epoch": progress.epoch,
        "metrics": progress.history[-1] if progress.history else {},
        "progress": {k: v for k, v in asdict(progress).items() if k != "history"},
        "history": progress.history,
    }


def save_state(
    run_dir: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    info: DatasetInfo,
    progress: Progress,
) -> None:
    save_checkpoint(run_dir / LAST_FILE, model, {"kind": "train_state", **meta(cfg, info, progress)}, opt)


def check_restorable(run_dir: Path, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """Refuse, read-only, a ``last.safetensors`` whose progress this run could not have saved (an epoch or
    step beyond the config's epochs or its data's steps, a history that does not match): before the claim
    rewrites anything, and again in :func:`restore`."""
    check_resume(run_dir / LAST_FILE, cfg.epochs, steps_per_epoch)


def restore(
    run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> Progress:
    """The progress saved in ``last.safetensors``, checked against the run (:func:`check_restorable`),
    with its weights and optimizer state loaded into ``model`` and ``opt``."""
    check_restorable(run_dir, cfg, steps_per_epoch)
    saved = load_into(run_dir / LAST_FILE, model, opt)
    progress = dict(saved.get("progress", {}))
    if "sums" in progress:  # a state written before the sum was named "score"
        progress["sums"] = {LEGACY_SUMS.get(k, k): v for k, v in progress["sums"].items()}
    return Progress(**{**progress, "history": saved.get("history", [])})


def read_sums(sums: dict[str, torch.Tensor], dist: distributed.Dist | None) -> dict[str, float]:
    """The running sums as floats; distributed, added over ranks (the same numbers on every rank)."""
    if dist is not None:
        sums = distributed.sum_over_ranks(sums)
    return {k: v.item() for k, v in sums.items()}


def check_finite(
    sums: dict[str, float], lr: float, progress: Progress, task: Task, run_dir: Path, running: float = 0.0
) -> dict[str, float]:
    """The step's log metrics from the running ``sums`` (images/s over the epoch's training time, the
    saved part plus ``running`` seconds since this process started it); a non-finite loss stops the run."""
    if not math.isfinite(sums["loss"]):
        raise diverged(
            f"training loss became {sums['loss']} at epoch {progress.epoch + 1}, step {progress.step}",
            run_dir,
        )
    count = max(sums["count"], 1.0)
    mean_loss = sums["loss"] / count
    metric = task.summarize(mean_loss, sums["score"] / count)
    rate = images_per_second(sums["count"], progress.epoch_seconds() + running)
    return {**sums, "lr": lr, "train_loss": mean_loss, f"train_{task.metric}": metric, "images_per_s": rate}


def images_per_second(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def check_finite_model(model: nn.Module, record: dict[str, Any], progress: Progress, run_dir: Path) -> None:
    """A finite training loss is not enough: weights that overflowed (a huge lr that BatchNorm hides from the
    loss) give a NaN test loss and would be saved. Stop before this epoch is saved, as for a NaN loss."""
    bad = record.get("test_loss") is not None and not math.isfinite(record["test_loss"])
    bad = bad or not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if bad:
        what = f"the weights became non-finite in epoch {progress.epoch + 1} (test loss {record.get('test_loss')})"
        raise diverged(what, run_dir)


def diverged(what: str, run_dir: Path) -> TrainingDiverged:
    """The one message of a run that diverged: what happened, what was kept, what to try."""
    last = run_dir / LAST_FILE
    kept = f"the last good state is kept in {last}" if last.is_file() else "no checkpoint had been saved yet"
    return TrainingDiverged(f"{what}; {kept} (try a lower --lr or --set grad_clip=1.0, with --overwrite)")


def epoch_record(
    progress: Progress,
    task: Task,
    test: dict[str, float] | None,
    lr: float,
    precise_bn: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The epoch's line of metrics.jsonl: its training metrics, the last step's learning rate ``lr``, the
    training throughput, if one ran, the test evaluation and, after the last epoch, whether the BatchNorm
    statistics were recomputed before it (``precise_bn``)."""
    count = max(progress.sums["count"], 1.0)
    mean_loss = progress.sums["loss"] / count
    extra = {"precise_bn": precise_bn} if precise_bn is not None else {}
    return {
        "epoch": progress.epoch + 1,
        "step": progress.global_step,
        "train_loss": mean_loss,
        f"train_{task.metric}": task.summarize(mean_loss, progress.sums["score"] / count),
        "test_loss": test["loss"] if test else None,
        f"test_{task.metric}": test[task.metric] if test else None,
        "seconds": round(progress.seconds, 3),
        "lr": lr,
        "images_per_s": images_per_second(progress.sums["count"], progress.epoch_seconds()),
        **extra,
    }


@dataclass
class TrainResult:
    run_dir: str
    checkpoint: str
    test_acc: float | None  # classify (fraction); None for unshuffle
    test_loss: float
    train_acc: float | None
    train_loss: float
    epochs: int
    seconds: float
    params_trainable: int
    params_frozen: int
    arch: str
    learn: str
    filters: str
    dataset: str
    seed: int
    task: str = "classify"
    test_psnr: float | None = None  # unshuffle (dB); None for classify
    train_psnr: float | None = None
    psnr_convention: str | None = None  # how test/train PSNR were computed (unshuffle); None for classify
    resumed: bool = False
    skipped: bool = False
    compiled: bool = False  # the training forward ran torch.compile'd (``seconds`` includes the compile)
    # whether BatchNorm's running statistics were recomputed before the final test evaluation, over how many
    # training images and batches (precise_bn.py); None: a run from before the pass existed
    precise_bn: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stored_result(run_dir: Path) -> TrainResult:
    """A finished run's result as stored in result.json, marked ``skipped``."""
    stored = read_result(run_dir, require_weights=False) or {}
    known = {k: v for k, v in stored.items() if k in TrainResult.__dataclass_fields__}
    return TrainResult(**{**known, "skipped": True})


def final_result(
    cfg: TrainConfig,
    run_dir: Path,
    progress: Progress,
    params: dict[str, Any],
    *,
    resumed: bool,
    compiled: bool,
) -> TrainResult:
    """The finished run's result.json, from its last epoch's record."""
    final = progress.history[-1]
    return TrainResult(
        run_dir=str(run_dir),
        checkpoint=str(run_dir / MODEL_FILE),
        test_acc=final.get("test_acc"),
        test_loss=final["test_loss"],
        train_acc=final.get("train_acc"),
        train_loss=final["train_loss"],
        epochs=cfg.epochs,
        seconds=round(progress.seconds, 3),
        params_trainable=params["params_trainable"],
        params_frozen=params["params_frozen"],
        arch=cfg.arch,
        learn=cfg.learn,
        filters=cfg.filters,
        dataset=cfg.dataset,
        seed=cfg.seed,
        task=cfg.task,
        test_psnr=final.get("test_psnr"),
        train_psnr=final.get("train_psnr"),
        psnr_convention=PSNR_CONVENTION if cfg.task == "unshuffle" else None,
        resumed=resumed,
        compiled=compiled,
        precise_bn=final.get("precise_bn"),
    )
