"""The trainer: ``train(cfg) -> TrainResult``, which reads as the run's table of contents, and its parts.

``train`` opens the run (:func:`open_run`: device, run directory claimed), prepares the data once (held as
uint8 on the device), builds what the steps use (:func:`build`: model, optimizer, progress restored on a
resume, the training forward) and then loops over epochs: :func:`start_epoch`, for every batch
:func:`one_step` (lr → batch → adversary / mixing → :func:`train_step` → running sums) and
:func:`after_step` (the log point: metrics, a stop request), then :func:`end_epoch` (precise BatchNorm,
test evaluation, save); :func:`finish` writes the model and the result. Each part reads top to bottom
(airbench's habit). Library code: it never prints; progress goes to an optional :class:`Callbacks`
object, and a ``should_stop`` callable lets the caller ask for a clean stop (the CLI sets it from
SIGINT/SIGTERM). The pieces it calls live next door: ``runtime`` (device, bf16), ``data.prepare``,
``claim.claimed_run_dir``, ``training_state`` (progress, checkpoints, divergence checks),
``evaluation``, ``precise_bn`` and ``distributed``. Names callers import from here stay importable:
``resolve_device``, ``check_bf16``, ``use_bf16``, ``to_float`` (runtime), ``prepare_data`` (data),
``evaluate`` (evaluation), ``Callbacks``, ``Progress``, ``TrainResult``, ``TrainingDiverged``
(training_state). The metric loggers (``loggers``: TensorBoard by default) are fed from the same hooks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from ..attacks.build import perturb
from ..attacks.spec import AttackSpec
from ..config.runfiles import MODEL_FILE
from ..config.train import TrainConfig
from ..data.info import DatasetInfo
from ..data.mixing import Mixer, make_mixer
from ..layers import param_report
from ..models import check_model, create_model
from ..seeding import derive_seed
from ..store.checkpoint import save_checkpoint
from ..store.rundir import default_run_dir, write_metrics, write_result
from . import distributed
from .callbacks import Callbacks
from .claim import RunDirClaim, claimed_run_dir
from .compiling import CompileSwitch, auto_mode
from .evaluate import evaluate
from .loggers import with_loggers
from .memory import check_training
from .precise_bn import settle
from .prepare import TrainData, prepare_data
from .runtime import autocast, check_bf16, resolve_device, to_float, use_bf16
from .state import (
    Progress,
    TrainResult,
    check_finite,
    check_finite_model,
    check_restorable,
    epoch_record,
    final_result,
    meta,
    read_sums,
    restore,
    save_state,
    stored_result,
)
from .steplog import with_step_log

# re-exported: callers catch it from here
from .stopping import TrainingInterrupted
from .tasks import Task


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


def adversary(cfg: TrainConfig) -> AttackSpec | None:
    """The attack that makes training examples (key ``adv``), or None for clean training. Examples are
    crafted on the model in eval mode (torchattacks' default), seeded by (seed, step) for exact resume.
    PGD is Madry et al.'s (α = 2.5 ε / steps unless ``adv_alpha``, uniform random start), not the paper's
    Eq. 4 reading that ``spatialmix attack`` defaults to."""
    if cfg.adv == "none":
        return None
    return AttackSpec(
        cfg.adv, cfg.adv_eps, cfg.adv_steps, cfg.adv_alpha, random_start=True, pgd_variant="madry"
    )


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
    with autocast(device, bf16):
        output = forward(x)
        loss = task.loss(output, targets, label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        params = trainable if trainable is not None else [p for g in opt.param_groups for p in g["params"]]
        nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    return output, loss


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
    Distributed (torchrun), every rank trains and only rank 0 (``main``) writes.
    """
    run, directory = open_run(cfg, run_dir, resume, overwrite, callbacks, should_stop)
    # Entering the directory does the read-only precheck; the claim that ``claim()`` takes is held to the end.
    with distributed.process_group(run.dist, run.device), directory, closing(run.callbacks):
        if directory.state == "finished":
            return stored_result(run.dir)
        data = prepare_data(cfg, run.device, run.dist)  # a missing dataset fails here, before any write
        if directory.state == "unfinished":  # progress that does not fit this run: refused before any write
            check_restorable(run.dir, cfg, data.train.steps_per_epoch)
        if directory.claim() == "finished":  # claimed, decided again and config.yaml written
            return stored_result(run.dir)
        resumed = directory.state == "unfinished"
        t = build(run, data, resumed=resumed)
        while t.progress.epoch < cfg.epochs:
            epoch = start_epoch(t)
            for images, labels in data.train.epoch(t.progress.epoch, t.progress.step):
                lr = one_step(t, epoch, images, labels)
                after_step(t, epoch, lr)
            end_epoch(t, epoch)
        return finish(t, resumed=resumed)


@dataclass(frozen=True)
class Run:
    """An opened run: what it trains, where it writes, on which device and rank, and who hears of it."""

    cfg: TrainConfig
    dir: Path
    dist: distributed.Dist | None
    device: torch.device
    callbacks: Callbacks
    should_stop: Callable[[], bool]

    @property
    def main(self) -> bool:
        """Whether this process writes and reports: rank 0, or a run on its own."""
        return self.dist is None or self.dist.main


def open_run(
    cfg: TrainConfig,
    run_dir: str | Path | None,
    resume: bool,
    overwrite: bool,
    callbacks: Callbacks | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[Run, RunDirClaim]:
    """The run's place in the job and its device (checked: a global batch the ranks can share, bf16 where
    asked), and its run directory, to be entered (precheck with the memory check) and claimed."""
    check_model(cfg)  # a bad model argument fails before anything is written
    dist = distributed.from_env()
    main = dist is None or dist.main
    # only rank 0 reports progress, logs metrics and records the logged steps (steps.jsonl, whatever the
    # logger); a logger's missing package fails here, before any write
    callbacks = with_step_log(with_loggers(callbacks, cfg), cfg) if main else Callbacks()
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    distributed.check_batch(dist, cfg.batch_size)
    device = distributed.device_for(dist, resolve_device(cfg.device))
    check_bf16(cfg, device)
    world = dist.world if dist is not None else 1
    directory = claimed_run_dir(
        run_dir,
        cfg,
        resume=resume,
        overwrite=overwrite,
        dist=dist,
        device=device,
        check=lambda: check_training(cfg, device, world),
    )
    return Run(cfg, run_dir, dist, device, callbacks, should_stop or (lambda: False)), directory


@dataclass
class Trainer:
    """What the steps and the epochs' ends use, built once by :func:`build`, and where the run is."""

    run: Run
    data: TrainData
    model: nn.Module  # the bare model: what is evaluated and saved
    opt: torch.optim.Optimizer
    forward: CompileSwitch  # the training forward: the model, DDP-wrapped when distributed, maybe compiled
    progress: Progress
    params: dict[str, Any]  # param_report: trainable and frozen counts
    adv: AttackSpec | None  # the attack that makes training examples, or None
    mixer: Mixer | None  # MixUp / CutMix, or None
    trainable: list[nn.Parameter]  # what gradient clipping clips

    @property
    def total(self) -> int:
        """Optimizer steps of the whole run."""
        return self.run.cfg.epochs * self.data.train.steps_per_epoch

    def lr(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        cfg = self.run.cfg
        warmup = warmup_steps(cfg, self.data.train.steps_per_epoch)
        return lr_at(step, total=self.total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule)


def build(run: Run, data: TrainData, *, resumed: bool) -> Trainer:
    """The model (channels-last where chosen), its optimizer, the progress (restored from last.safetensors
    when the run resumes), the training forward and what each step needs; the callbacks hear of the start."""
    cfg = run.cfg
    model = build_model(cfg, data.info).to(run.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, model)
    progress = start_progress(run, model, opt, data.train.steps_per_epoch, resumed=resumed)
    params = param_report(model)
    mixer = make_mixer(cfg.mixup, cfg.cutmix, data.info.num_classes) if cfg.task == "classify" else None
    trainable = [p for p in model.parameters() if p.requires_grad]
    forward = training_forward(run, model, progress, total=cfg.epochs * data.train.steps_per_epoch)
    t = Trainer(run, data, model, opt, forward, progress, params, adversary(cfg), mixer, trainable)
    run.callbacks.on_start(
        run_dir=run.dir, total_steps=t.total, done_steps=progress.global_step, params=params
    )
    return t


def start_progress(
    run: Run, model: nn.Module, opt: torch.optim.Optimizer, steps_per_epoch: int, *, resumed: bool
) -> Progress:
    """Where the run starts: restored from last.safetensors when it resumes, else at step 0. The saved
    running sums are global: rank 0 carries them, the others start from zero. Rank 0 writes metrics.jsonl
    (the epochs done so far)."""
    progress = restore(run.dir, model, opt, run.cfg, steps_per_epoch) if resumed else Progress()
    if not run.main:
        progress.sums = {k: 0.0 for k in progress.sums}
    if run.main:
        write_metrics(run.dir, progress.history)
    return progress


def training_forward(run: Run, model: nn.Module, progress: Progress, *, total: int) -> CompileSwitch:
    """The module each step calls: the model, DDP-wrapped when distributed, compiled as ``compile`` says
    (automatic: decided after a few timed steps, by every rank together)."""
    cfg, device = run.cfg, run.device
    return CompileSwitch(
        distributed.wrap(model, run.dist, device, cfg.sync_bn),
        cfg.compile if cfg.compile is not None else auto_mode(device),
        total_steps=total,
        done_steps=progress.global_step,
        agree=(lambda d: d) if run.dist is None else (lambda d: distributed.any_rank(d, device)),
        note=run.callbacks.on_note,
    )


@dataclass
class Epoch:
    """An epoch under way: its running sums, kept on the device (reading them syncs it, so they are read at
    log points only; distributed, added over ranks whenever read), and when this process started it."""

    sums: dict[str, torch.Tensor]
    started: float

    def add(self, loss: torch.Tensor, score: torch.Tensor, count: int) -> None:
        """A step's batch: its mean ``loss``, the task's ``score`` summed over it and its size."""
        self.sums["loss"] += loss.detach() * count
        self.sums["score"] += score
        self.sums["count"] += count

    def seconds(self) -> float:
        """Training seconds this process has spent on the epoch so far."""
        return time.perf_counter() - self.started


def start_epoch(t: Trainer) -> Epoch:
    """The model in train mode; the running sums from where the epoch stands (zero, or as saved)."""
    t.model.train()
    sums = {k: torch.tensor(v, device=t.run.device) for k, v in t.progress.sums.items()}
    return Epoch(sums, time.perf_counter())


def one_step(t: Trainer, epoch: Epoch, images: torch.Tensor, labels: torch.Tensor) -> float:
    """One optimizer step on one uint8 batch: the step's learning rate, the inputs and targets (crafted by
    the adversary and mixed where chosen, each seeded by the step, so a resumed run repeats them), the
    step, the running sums. Returns the step's learning rate."""
    cfg, progress, task = t.run.cfg, t.progress, t.data.task
    lr = t.lr(progress.global_step)
    for group in t.opt.param_groups:
        group["lr"] = lr
    x, targets = task.inputs_targets(to_float(images, cfg.channels_last), labels)
    if t.adv is not None:
        seed = derive_seed(cfg.seed, "adversary", progress.global_step)
        x = perturb(t.model, t.adv, x, labels, num_classes=t.data.info.num_classes, seed=seed)
    if t.mixer is not None:
        rank = t.run.dist.rank if t.run.dist is not None else 0
        x, targets = t.mixer(x, targets, derive_seed(cfg.seed, "mix", progress.global_step, rank))
    output, loss = train_step(
        t.forward,
        t.opt,
        task,
        x,
        targets,
        device=t.run.device,
        bf16=use_bf16(cfg, t.run.device),
        label_smoothing=cfg.label_smoothing,
        grad_clip=cfg.grad_clip,
        trainable=t.trainable,
    )
    epoch.add(loss, task.score(output.detach(), targets), labels.shape[0])
    progress.step += 1
    progress.global_step += 1
    return lr


def after_step(t: Trainer, epoch: Epoch, lr: float) -> None:
    """The step's log point. Every ``log_every`` steps the callbacks get the live metrics (the running
    sums read from the device, the loss checked finite); on other steps, none. A stop request ends the
    run here, saved to resume at the next step: alone, checked every step; distributed, the ranks agree
    on it at log steps and at the epoch's last step only (each agreement waits for every rank)."""
    progress, steps = t.progress, t.data.train.steps_per_epoch
    logs = progress.global_step % t.run.cfg.log_every == 0
    due = logs or progress.step == steps
    stop = distributed.agree_to_stop(t.run.should_stop, t.run.dist, t.run.device, due=due)
    metrics = None
    if logs or stop:
        sums = read_sums(epoch.sums, t.run.dist)
        metrics = check_finite(sums, lr, progress, t.data.task, t.run.dir, running=epoch.seconds())
    t.run.callbacks.on_step(global_step=progress.global_step, epoch=progress.epoch, metrics=metrics)
    if stop:
        interrupt(t, epoch)


def interrupt(t: Trainer, epoch: Epoch) -> NoReturn:
    """Save the state mid-epoch (rank 0) so ``--resume`` continues at the next step, and stop every rank."""
    progress = t.progress
    progress.sums = read_sums(epoch.sums, t.run.dist)
    progress.seconds += epoch.seconds()
    if t.run.main:
        save_state(t.run.dir, t.model, t.opt, t.run.cfg, t.data.info, progress)
    distributed.barrier(t.run.dist)
    raise TrainingInterrupted(t.run.dir, progress.epoch, progress.step)


def end_epoch(t: Trainer, epoch: Epoch) -> None:
    """The epoch's end: its running sums read and checked finite; after the last epoch, BatchNorm
    statistics recomputed where ``precise_bn`` says so (before the test evaluation and the saves); a test
    evaluation if one is due; the epoch's record checked, written to metrics.jsonl and saved."""
    cfg, progress, run = t.run.cfg, t.progress, t.run
    progress.sums = read_sums(epoch.sums, run.dist)
    check_finite(progress.sums, 0.0, progress, t.data.task, run.dir)
    progress.seconds += epoch.seconds()
    done = progress.epoch + 1
    last = done == cfg.epochs
    bn = settle(cfg, t.model, t.data, t.total, run.device, run.dist, run.callbacks.on_note) if last else None
    due = last or (cfg.eval_every > 0 and done % cfg.eval_every == 0)
    test = evaluate_on_test(t) if due else None
    record = epoch_record(progress, t.data.task, test, t.lr(progress.global_step - 1), precise_bn=bn)
    check_finite_model(t.model, record, progress, run.dir)
    progress.next_epoch(record)
    if run.main:
        write_metrics(run.dir, progress.history)
        save_state(run.dir, t.model, t.opt, cfg, t.data.info, progress)
    run.callbacks.on_epoch_end(record)


def evaluate_on_test(t: Trainer) -> dict[str, float]:
    """The test set's mean loss and the task's metric, as the run trains them (bf16, channels-last)."""
    cfg, device = t.run.cfg, t.run.device
    bf16 = use_bf16(cfg, device)
    return evaluate(
        t.model, t.data.test(), device=device, bf16=bf16, channels_last=cfg.channels_last, task=t.data.task
    )


def finish(t: Trainer, *, resumed: bool) -> TrainResult:
    """The final model (model.safetensors) and result (result.json), written by rank 0; no rank reports
    success before rank 0 has written the run."""
    cfg, run, progress = t.run.cfg, t.run, t.progress
    if run.main:
        described = {"kind": "model", **meta(cfg, t.data.info, progress)}
        save_checkpoint(run.dir / MODEL_FILE, t.model, described)
    result = final_result(cfg, run.dir, progress, t.params, resumed=resumed, compiled=t.forward.is_compiled)
    if run.main:
        write_result(run.dir, result.to_dict())
    distributed.barrier(run.dist)
    return result
