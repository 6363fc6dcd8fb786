"""The trainer: one readable ``train(cfg) -> TrainResult``, plus ``evaluate`` and a pure ``lr_at(step)``.

Reads top to bottom in the order it runs (airbench's habit): device → data (held once as uint8 on the
device) → model → optimizer → resume → epochs of steps → checkpoint → result. Library code: it never
prints; progress goes to an optional :class:`Callbacks` object, and a ``should_stop`` callable lets the
caller ask for a clean stop (the CLI sets it from SIGINT/SIGTERM).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .attacks.build import AttackSpec, perturb
from .checkpoint import load_into, save_checkpoint
from .compiling import CompileSwitch, auto_mode
from .config import TrainConfig
from .data import TensorBatches, eval_batches, load_dataset
from .data.batches import Batch, BatchSource
from .data.info import DatasetInfo, dataset_info
from .data.mixing import make_mixer
from .errors import ConfigError, RunDirError, SpatialmixError
from .hardware import cpu_info
from .layers import param_report
from .memory import check_training
from .models import create_model
from .rundir import (
    LAST_FILE,
    MODEL_FILE,
    check_run_dir,
    default_run_dir,
    init_run_dir,
    read_result,
    write_metrics,
    write_result,
)
from .runlock import RunDirBusy, check_free, claim
from .seeding import derive_seed
from .tasks import Classify, Task, make_task
from .unshuffle.psnr import PSNR_CONVENTION


class TrainingInterrupted(Exception):
    """Raised after the state was saved because ``should_stop()`` turned true (Ctrl-C / SIGTERM)."""

    def __init__(self, run_dir: Path, epoch: int, step: int) -> None:
        super().__init__(f"stopped at epoch {epoch + 1}, step {step}; state saved in {run_dir / LAST_FILE}")
        self.run_dir = run_dir


class TrainingDiverged(SpatialmixError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


class Callbacks:
    """Progress hooks; the CLI's rich progress bar subclasses this. All methods are optional no-ops."""

    def on_start(
        self, *, run_dir: Path, total_steps: int, done_steps: int, params: dict[str, Any]
    ) -> None: ...

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None: ...

    def on_epoch_end(self, record: dict[str, Any]) -> None: ...

    def on_note(self, text: str) -> None:
        """A one-line remark about how the run executes (e.g. the automatic torch.compile decision)."""


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Progress:
    """Where a run is; saved in last.safetensors so a resumed run continues at the exact step."""

    epoch: int = 0
    step: int = 0  # steps done in ``epoch``
    global_step: int = 0
    seconds: float = 0.0  # training time so far (evaluation excluded)
    sums: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "count": 0.0})
    history: list[dict[str, Any]] = field(default_factory=list)


# --- small pure pieces ------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """The torch device for ``--device``; a device this machine does not have is a ConfigError (exit 2)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name} asked for, but no CUDA GPU is available here; use --device cpu or auto"
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name} asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    if name == "mps" and not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
        raise ConfigError(
            "--device mps asked for, but this PyTorch has no usable Apple MPS device here; use --device cpu or auto"
        )
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name}: {exc}") from None


def lr_at(step: int, *, total: int, warmup: int, peak: float, schedule: str) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total``: linear warm-up over ``warmup``
    steps, then ``onecycle`` decays linearly to 0, ``cosine`` along a half cosine, ``constant`` stays.
    A pure function of the step (not a torch scheduler), so resuming needs nothing but the step number."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak * (1.0 - progress)


def warmup_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    if cfg.warmup_epochs is not None:
        return round(cfg.warmup_epochs * steps_per_epoch)
    return round(0.3 * cfg.epochs * steps_per_epoch) if cfg.schedule == "onecycle" else 0


def build_model(cfg: TrainConfig, info: DatasetInfo) -> nn.Module:
    return create_model(cfg.arch, **cfg.model_kwargs(info))


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Only trainable parameters; no weight decay on norm weights and biases (ndim < 2)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether ``cfg`` runs in bf16 autocast on ``device``: ``bf16`` on CUDA, ``cpu_bf16`` on a CPU."""
    return cfg.bf16 if device.type == "cuda" else device.type == "cpu" and cfg.cpu_bf16


def check_bf16(cfg: TrainConfig, device: torch.device) -> None:
    """Refuse ``cpu_bf16`` on a CPU without native bf16 arithmetic: oneDNN would emulate it, slower than
    float32, and the numbers would differ for nothing."""
    if device.type == "cpu" and cfg.cpu_bf16 and not cpu_info().bf16:
        raise ConfigError(
            "cpu_bf16: this CPU has no native bf16 units (AVX512-BF16 / AMX-BF16 / Arm BF16 in /proc/cpuinfo); "
            "bf16 would be emulated and slower than float32 — train without --cpu-bf16"
        )


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``bf16`` (see ``use_bf16``), else nothing."""
    if bf16 and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def adversary(cfg: TrainConfig) -> AttackSpec | None:
    """The attack that makes training examples (``--adv``), or None for clean training. Examples are
    crafted on the model in eval mode (torchattacks' default), seeded by (seed, step) for exact resume."""
    if cfg.adv == "none":
        return None
    return AttackSpec(cfg.adv, cfg.adv_eps, cfg.adv_steps, cfg.adv_alpha, random_start=True)


def to_float(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 [0, 255] → float [0, 1] (the models normalise inside)."""
    x = images.float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterator[Batch],
    *,
    device: torch.device,
    bf16: bool = False,
    channels_last: bool = False,
    task: Task | None = None,
) -> dict[str, float]:
    """Mean loss and the task's metric of ``model`` in eval mode over uint8 batches: ``{"loss", "acc",
    "n"}`` for classification (cross-entropy, accuracy as a fraction), ``{"loss", "psnr", "n"}`` (MSE, dB)
    for un-shuffling."""
    task = task or Classify()
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=device, dtype=torch.float64)
    score = torch.zeros((), device=device, dtype=torch.float64)
    count = 0
    for images, labels in batches:
        inputs, targets = task.inputs_targets(to_float(images, channels_last), labels)
        with _autocast(device, bf16):
            output = model(inputs)
        n = labels.shape[0]
        loss += task.loss(output, targets) * n
        score += task.score(output, targets)
        count += n
    model.train(was_training)
    mean_loss, mean_score = loss.item() / max(count, 1), score.item() / max(count, 1)
    return {"loss": mean_loss, task.metric: task.summarize(mean_loss, mean_score), "n": count}


# --- data ---------------------------------------------------------------------------------------------
@dataclass
class _Data:
    info: DatasetInfo
    train: BatchSource
    test: Callable[[], Iterator[Batch]]
    task: Task


def prepare_data(cfg: TrainConfig, device: torch.device, dist: distributed.Dist | None = None) -> _Data:
    """Small datasets: loaded once, moved once to the device as uint8. ImageNet: an ImageFolder stream."""
    info = dataset_info(cfg.dataset)
    task = make_task(cfg.task, image_size=cfg.image_size or info.image_size, perm_seed=cfg.perm_seed)
    # Classification uses the dataset's augmentation by default; un-shuffling none (the target is the image).
    classify = cfg.task == "classify"
    crop_pad = (info.crop_pad if classify else 0) if cfg.crop_pad is None else cfg.crop_pad
    hflip = (info.hflip if classify else False) if cfg.hflip is None else cfg.hflip
    shard = (dist.rank, dist.world) if dist is not None else (0, 1)
    if cfg.dataset == "imagenet":
        from .data.imagefolder import FolderBatches, find_imagefolder, folder_eval_batches, imagefolder_info

        root = find_imagefolder(cfg.data_dir)
        size = cfg.image_size or info.image_size
        source = FolderBatches(
            root,
            image_size=size,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            device=device,
            hflip=hflip,
            subset=cfg.subset,
            workers=cfg.workers,
            shard=shard,
            randaugment=cfg.randaugment,
            randaugment_magnitude=cfg.randaugment_magnitude,
        )
        return _Data(
            imagefolder_info(root, size),
            source,
            lambda: folder_eval_batches(
                root,
                image_size=size,
                batch_size=cfg.eval_batch_size,
                device=device,
                subset=cfg.test_subset,
                workers=cfg.workers,
            ),
            task,
        )
    data = load_dataset(
        cfg.dataset,
        data_dir=cfg.data_dir,
        subset=cfg.subset,
        test_subset=cfg.test_subset,
        download=cfg.download,
    )
    data = data.resized(cfg.image_size).to(device)
    source = TensorBatches(data.train_x, data.train_y, batch_size=cfg.batch_size, seed=cfg.seed,
                           crop_pad=crop_pad, hflip=hflip, shard=shard)  # fmt: skip
    return _Data(data.info, source, lambda: eval_batches(data.test_x, data.test_y, cfg.eval_batch_size), task)


# --- the run ------------------------------------------------------------------------------------------
def _meta(cfg: TrainConfig, info: DatasetInfo, progress: _Progress) -> dict[str, Any]:
    return {
        "model": {
            "name": cfg.arch,
            "kwargs": {k: v for k, v in cfg.model_kwargs(info).items() if v is not None},
        },
        "dataset": info.to_dict(),
        "config": cfg.to_dict(),
        "epoch": progress.epoch,
        "metrics": progress.history[-1] if progress.history else {},
        "progress": {k: v for k, v in asdict(progress).items() if k != "history"},
        "history": progress.history,
    }


def _save_state(
    run_dir: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    info: DatasetInfo,
    progress: _Progress,
) -> None:
    save_checkpoint(run_dir / LAST_FILE, model, {"kind": "train_state", **_meta(cfg, info, progress)}, opt)


def _restore(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> _Progress:
    meta = load_into(run_dir / LAST_FILE, model, opt)
    saved = meta.get("progress", {})
    return _Progress(**{**saved, "history": meta.get("history", [])})


def train(
    cfg: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Callbacks | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (default ``runs/<arch>-<learn>-...``) and return the result.

    A finished run directory of the same config is not trained again (its result comes back with
    ``skipped=True``); an unfinished one continues exactly where it stopped when ``resume`` is true.
    """
    dist = distributed.from_env()
    main = dist is None or dist.main
    callbacks = (callbacks or Callbacks()) if main else Callbacks()  # only rank 0 reports progress
    should_stop = should_stop or (lambda: False)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    distributed.check_batch(dist, cfg.batch_size)
    device = distributed.device_for(dist, resolve_device(cfg.device))
    check_bf16(cfg, device)

    def precheck() -> str:  # read-only: refuse or skip before the data is loaded
        check_free(run_dir)
        state = check_run_dir(run_dir, cfg, resume=resume, overwrite=overwrite)
        if state != "finished":  # what cannot fit is refused before the data is loaded or the model built
            check_training(cfg, device, dist.world if dist is not None else 1)
        return state

    with distributed.process_group(dist, device), contextlib.ExitStack() as held:

        def decide() -> str:  # under the claim: another worker may have finished or started this point
            held.enter_context(claim(run_dir))  # while the data loaded, so decide again, then write
            state = check_run_dir(run_dir, cfg, resume=resume, overwrite=overwrite)
            if state != "finished":
                init_run_dir(run_dir, cfg, state, overwrite=overwrite)
            return state

        if _on_rank0(precheck, run_dir, dist, device) == "finished":
            return _stored_result(run_dir)
        data = prepare_data(cfg, device, dist)  # a missing dataset fails here, before anything is written
        state = _on_rank0(decide, run_dir, dist, device)
        if state == "finished":
            return _stored_result(run_dir)
        return _fit(cfg, run_dir, state, device, data, callbacks, should_stop, dist)


_OUTCOMES = ("new", "unfinished", "finished", "busy")


def _on_rank0(
    decision: Callable[[], str], run_dir: Path, dist: distributed.Dist | None, device: torch.device
) -> str:
    """Run ``decision`` on rank 0 (or alone) and give its outcome to every rank, so all ranks train,
    skip or fail the same point together; a rank that went its own way would wait forever in the next
    collective."""
    outcome, error = None, None
    if dist is None or dist.main:
        try:
            outcome = decision()
        except RunDirBusy as exc:
            outcome, error = "busy", exc
        except BaseException as exc:
            error = exc
    shared = distributed.broadcast_choice(outcome, _OUTCOMES, dist, device)
    if error is not None:
        raise error
    if shared == "busy":
        raise RunDirBusy(f"{run_dir} is being trained by another process; skipped")
    if shared is None:
        raise RunDirError(f"rank 0 could not prepare {run_dir}; see its error")
    return shared


def _stored_result(run_dir: Path) -> TrainResult:
    stored = read_result(run_dir, require_weights=False) or {}
    known = {k: v for k, v in stored.items() if k in TrainResult.__dataclass_fields__}
    return TrainResult(**{**known, "skipped": True})


def _fit(
    cfg: TrainConfig,
    run_dir: Path,
    state: str,
    device: torch.device,
    data: _Data,
    callbacks: Callbacks,
    should_stop: Callable[[], bool],
    dist: distributed.Dist | None = None,
) -> TrainResult:
    """The run itself, in a claimed and initialised run directory: model → optimizer → resume → epochs.
    Every rank trains; only rank 0 (``main``) writes."""
    main = dist is None or dist.main
    model = build_model(cfg, data.info).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, model)
    progress = _restore(run_dir, model, opt) if state == "unfinished" else _Progress()
    if not main:  # the saved running sums are global: rank 0 carries them, the others start from zero
        progress.sums = {k: 0.0 for k in progress.sums}
    if main:
        write_metrics(run_dir, progress.history)
    params = param_report(model)
    steps = data.train.steps_per_epoch
    total, warmup = cfg.epochs * steps, warmup_steps(cfg, steps)
    forward = CompileSwitch(
        distributed.wrap(model, dist, device, cfg.sync_bn),
        cfg.compile if cfg.compile is not None else auto_mode(device),
        total_steps=total,
        done_steps=progress.global_step,
        agree=(lambda decision: decision) if dist is None else (lambda d: distributed.any_rank(d, device)),
        note=callbacks.on_note,
    )
    callbacks.on_start(run_dir=run_dir, total_steps=total, done_steps=progress.global_step, params=params)

    while progress.epoch < cfg.epochs:
        _run_epoch(
            cfg, data, model, forward, opt, progress, device, total, warmup, callbacks, should_stop, run_dir,
            dist,
        )  # fmt: skip
        record = _end_epoch(cfg, data, model, progress, device, steps)
        _check_finite_model(model, record, progress, run_dir)
        progress.epoch, progress.step = progress.epoch + 1, 0
        progress.sums = {"loss": 0.0, "correct": 0.0, "count": 0.0}
        progress.history.append(record)
        if main:
            write_metrics(run_dir, progress.history)
            _save_state(run_dir, model, opt, cfg, data.info, progress)
        callbacks.on_epoch_end(record)

    final = progress.history[-1]
    if main:
        save_checkpoint(run_dir / MODEL_FILE, model, {"kind": "model", **_meta(cfg, data.info, progress)})
    result = TrainResult(
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
        resumed=state == "unfinished",
        compiled=forward.is_compiled,
    )
    if main:
        write_result(run_dir, result.to_dict())
    distributed.barrier(dist)  # no rank reports success before rank 0 has written the run
    return result


def train_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    opt: torch.optim.Optimizer,
    task: Task,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    device: torch.device,
    bf16: bool,
    label_smoothing: float = 0.0,
    grad_clip: float | None = None,
    trainable: list[nn.Parameter] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on one prepared batch — forward (in bf16 autocast where chosen), loss, backward,
    optional gradient clipping over ``trainable`` (default: the optimizer's parameters), step — returning the
    output and the loss. The trainer's loop and ``spatialmix bench`` both run this, so the benchmark times the
    step training really takes."""
    with _autocast(device, bf16):
        output = forward(x)
        loss = task.loss(output, targets, label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        params = trainable if trainable is not None else [p for g in opt.param_groups for p in g["params"]]
        nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    return output, loss


def _run_epoch(
    cfg: TrainConfig,
    data: _Data,
    model: nn.Module,
    forward: CompileSwitch,
    opt: torch.optim.Optimizer,
    progress: _Progress,
    device: torch.device,
    total: int,
    warmup: int,
    callbacks: Callbacks,
    should_stop: Callable[[], bool],
    run_dir: Path,
    dist: distributed.Dist | None = None,
) -> None:
    """The steps of one epoch, from ``progress.step`` on. Running sums stay on the device; ``.item()``
    happens only every ``log_every`` steps. Distributed: the ranks agree on stopping at every step, and
    the sums are added over ranks whenever they are read."""
    model.train()
    task = data.task
    adv = adversary(cfg)
    mixer = make_mixer(cfg.mixup, cfg.cutmix, data.info.num_classes) if cfg.task == "classify" else None
    rank = dist.rank if dist is not None else 0
    trainable = [p for p in model.parameters() if p.requires_grad]
    bf16 = use_bf16(cfg, device)
    sums = {k: torch.tensor(v, device=device) for k, v in progress.sums.items()}
    started = time.perf_counter()
    for images, labels in data.train.epoch(progress.epoch, progress.step):
        lr = lr_at(progress.global_step, total=total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule)
        for group in opt.param_groups:
            group["lr"] = lr
        x, targets = task.inputs_targets(to_float(images, cfg.channels_last), labels)
        if adv is not None:
            x = perturb(model, adv, x, labels, num_classes=data.info.num_classes,
                        seed=derive_seed(cfg.seed, "adversary", progress.global_step))  # fmt: skip
        if mixer is not None:
            x, targets = mixer(x, targets, derive_seed(cfg.seed, "mix", progress.global_step, rank))
        output, loss = train_step(forward, opt, task, x, targets, device=device, bf16=bf16,
                                  label_smoothing=cfg.label_smoothing, grad_clip=cfg.grad_clip,
                                  trainable=trainable)  # fmt: skip
        n = labels.shape[0]
        sums["loss"] += loss.detach() * n
        sums["correct"] += task.score(output.detach(), targets)
        sums["count"] += n
        progress.step += 1
        progress.global_step += 1
        stop = should_stop() if dist is None else distributed.any_rank(should_stop(), device)
        metrics = None
        if progress.global_step % cfg.log_every == 0 or stop:
            metrics = _check_finite(_read(sums, dist), lr, progress, task, run_dir)
        callbacks.on_step(global_step=progress.global_step, epoch=progress.epoch, metrics=metrics)
        if stop:
            progress.sums = _read(sums, dist)
            progress.seconds += time.perf_counter() - started
            if dist is None or dist.main:
                _save_state(run_dir, model, opt, cfg, data.info, progress)
            distributed.barrier(dist)
            raise TrainingInterrupted(run_dir, progress.epoch, progress.step)
    progress.sums = _read(sums, dist)
    _check_finite(progress.sums, 0.0, progress, task, run_dir)
    progress.seconds += time.perf_counter() - started


def _read(sums: dict[str, torch.Tensor], dist: distributed.Dist | None) -> dict[str, float]:
    """The running sums as floats; distributed, added over ranks (the same numbers on every rank)."""
    if dist is not None:
        sums = distributed.sum_over_ranks(sums)
    return {k: v.item() for k, v in sums.items()}


def _check_finite(
    sums: dict[str, float], lr: float, progress: _Progress, task: Task, run_dir: Path
) -> dict[str, float]:
    if not math.isfinite(sums["loss"]):
        raise _diverged(
            f"training loss became {sums['loss']} at epoch {progress.epoch + 1}, step {progress.step}",
            run_dir,
        )
    count = max(sums["count"], 1.0)
    mean_loss = sums["loss"] / count
    metric = task.summarize(mean_loss, sums["correct"] / count)
    return {**sums, "lr": lr, "train_loss": mean_loss, f"train_{task.metric}": metric}


def _check_finite_model(model: nn.Module, record: dict[str, Any], progress: _Progress, run_dir: Path) -> None:
    """A finite training loss is not enough: weights that overflowed (a huge lr that BatchNorm hides from the
    loss) give a NaN test loss and would be saved. Stop before this epoch is saved, as for a NaN loss."""
    bad = record.get("test_loss") is not None and not math.isfinite(record["test_loss"])
    bad = bad or not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if bad:
        what = f"the weights became non-finite in epoch {progress.epoch + 1} (test loss {record.get('test_loss')})"
        raise _diverged(what, run_dir)


def _diverged(what: str, run_dir: Path) -> TrainingDiverged:
    """The one message of a run that diverged: what happened, what was kept, what to try."""
    last = run_dir / LAST_FILE
    kept = f"the last good state is kept in {last}" if last.is_file() else "no checkpoint had been saved yet"
    return TrainingDiverged(f"{what}; {kept} (try a lower --lr or --set grad_clip=1.0, with --overwrite)")


def _end_epoch(
    cfg: TrainConfig, data: _Data, model: nn.Module, progress: _Progress, device: torch.device, steps: int
) -> dict[str, Any]:
    """Training metrics of the epoch, and a test evaluation if one is due (always after the last)."""
    count = max(progress.sums["count"], 1.0)
    task = data.task
    last = progress.epoch + 1 == cfg.epochs
    due = last or (cfg.eval_every > 0 and (progress.epoch + 1) % cfg.eval_every == 0)
    test = (
        evaluate(
            model,
            data.test(),
            device=device,
            bf16=use_bf16(cfg, device),
            channels_last=cfg.channels_last,
            task=task,
        )
        if due
        else None
    )
    mean_loss = progress.sums["loss"] / count
    return {
        "epoch": progress.epoch + 1,
        "step": progress.global_step,
        "train_loss": mean_loss,
        f"train_{task.metric}": task.summarize(mean_loss, progress.sums["correct"] / count),
        "test_loss": test["loss"] if test else None,
        f"test_{task.metric}": test[task.metric] if test else None,
        "seconds": round(progress.seconds, 3),
    }
