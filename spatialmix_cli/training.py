"""The trainer: one readable ``train(cfg) -> TrainResult``, plus ``train_step`` and a pure ``lr_at(step)``.

Reads top to bottom in the order it runs (airbench's habit): device → claim of the run directory → data
(held once as uint8 on the device) → model → optimizer → resume → one loop of steps (lr → batch → adversary /
mixing → step → log; at the end of an epoch: eval → save) → final checkpoint → result. Library code: it
never prints; progress goes to an optional :class:`Callbacks` object, and a ``should_stop`` callable lets
the caller ask for a clean stop (the CLI sets it from SIGINT/SIGTERM). The pieces it calls live next door:
``runtime`` (device, bf16), ``data.prepare``, ``rundir.claimed_run_dir``, ``training_state`` (progress,
checkpoints, divergence checks) and ``evaluation``. Names callers import from here stay importable:
``resolve_device``, ``check_bf16``, ``use_bf16``, ``to_float`` (runtime), ``prepare_data`` (data),
``evaluate`` (evaluation), ``Callbacks``, ``Progress``, ``TrainResult``, ``TrainingDiverged``
(training_state). The metric loggers (``loggers``: TensorBoard by default) are fed from the same hooks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import torch
from torch import nn

from . import distributed
from .attacks.build import AttackSpec, perturb
from .checkpoint import save_checkpoint
from .compiling import CompileSwitch, auto_mode
from .config import TrainConfig
from .data import prepare_data
from .data.info import DatasetInfo
from .data.mixing import make_mixer
from .evaluation import evaluate
from .layers import param_report
from .loggers import with_loggers
from .memory import check_training
from .models import create_model
from .precise_bn import settle
from .rundir import (
    LAST_FILE,
    MODEL_FILE,
    claimed_run_dir,
    default_run_dir,
    write_metrics,
    write_result,
)
from .runtime import autocast, check_bf16, resolve_device, to_float, use_bf16
from .seeding import derive_seed
from .tasks import Task
from .training_state import (
    Callbacks,
    Progress,
    TrainResult,
    check_finite,
    check_finite_model,
    epoch_record,
    final_result,
    meta,
    read_sums,
    restore,
    save_state,
    stored_result,
)

# re-exported: callers catch it from here
from .training_state import TrainingDiverged as TrainingDiverged


class TrainingInterrupted(Exception):
    """Raised after the state was saved because ``should_stop()`` turned true (Ctrl-C / SIGTERM)."""

    def __init__(self, run_dir: Path, epoch: int, step: int) -> None:
        super().__init__(f"stopped at epoch {epoch + 1}, step {step}; state saved in {run_dir / LAST_FILE}")
        self.run_dir = run_dir
        self.epoch = epoch + 1  # the epoch it stopped in, 1-based (as in metrics.jsonl and the message)
        self.step = step  # steps done in that epoch


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
    # long: the run reads top to bottom in the order it runs (airbench's habit), the steps and the epoch's
    # end in one loop; everything it calls is named for what it does.
    dist = distributed.from_env()
    main = dist is None or dist.main
    # only rank 0 reports progress and logs metrics; a logger's missing package fails here, before any write
    callbacks = with_loggers(callbacks, cfg) if main else Callbacks()
    should_stop = should_stop or (lambda: False)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    distributed.check_batch(dist, cfg.batch_size)
    device = distributed.device_for(dist, resolve_device(cfg.device))
    check_bf16(cfg, device)
    run = claimed_run_dir(run_dir, cfg, resume=resume, overwrite=overwrite, dist=dist, device=device,
                          check=lambda: check_training(cfg, device, dist.world if dist is not None else 1))  # fmt: skip
    # Entering ``run`` does the read-only precheck; the claim that ``run.claim()`` takes is held to the end.
    with distributed.process_group(dist, device), run, closing(callbacks):
        if run.state == "finished":
            return stored_result(run_dir)
        data = prepare_data(cfg, device, dist)  # a missing dataset fails here, before anything is written
        if run.claim() == "finished":  # claimed, decided again and config.yaml written
            return stored_result(run_dir)
        model = build_model(cfg, data.info).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = build_optimizer(cfg, model)
        progress = restore(run_dir, model, opt) if run.state == "unfinished" else Progress()
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
            agree=(lambda d: d) if dist is None else (lambda d: distributed.any_rank(d, device)),
            note=callbacks.on_note,
        )
        callbacks.on_start(run_dir=run_dir, total_steps=total, done_steps=progress.global_step, params=params)
        task, adv, bf16 = data.task, adversary(cfg), use_bf16(cfg, device)
        rank = dist.rank if dist is not None else 0
        mixer = make_mixer(cfg.mixup, cfg.cutmix, data.info.num_classes) if cfg.task == "classify" else None
        trainable = [p for p in model.parameters() if p.requires_grad]

        # Running sums stay on the device; ``.item()`` happens only every ``log_every`` steps. Distributed:
        # the ranks agree on stopping at every step, and the sums are added over ranks whenever they are read.
        while progress.epoch < cfg.epochs:
            model.train()
            sums = {k: torch.tensor(v, device=device) for k, v in progress.sums.items()}
            started = time.perf_counter()
            for images, labels in data.train.epoch(progress.epoch, progress.step):
                lr = lr_at(
                    progress.global_step, total=total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule
                )
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
                    metrics = check_finite(read_sums(sums, dist), lr, progress, task, run_dir,
                                           running=time.perf_counter() - started)  # fmt: skip
                callbacks.on_step(global_step=progress.global_step, epoch=progress.epoch, metrics=metrics)
                if stop:
                    progress.sums = read_sums(sums, dist)
                    progress.seconds += time.perf_counter() - started
                    if main:
                        save_state(run_dir, model, opt, cfg, data.info, progress)
                    distributed.barrier(dist)
                    raise TrainingInterrupted(run_dir, progress.epoch, progress.step)
            progress.sums = read_sums(sums, dist)
            check_finite(progress.sums, 0.0, progress, task, run_dir)
            progress.seconds += time.perf_counter() - started
            # The epoch's end: after the last, BatchNorm statistics recomputed where precise_bn says so
            # (before the test evaluation and the saves); a test evaluation if one is due, then save.
            done = progress.epoch + 1
            bn = (
                settle(cfg, model, data, total, device, dist, callbacks.on_note)
                if done == cfg.epochs
                else None
            )
            due = done == cfg.epochs or (cfg.eval_every > 0 and done % cfg.eval_every == 0)
            test = evaluate(model, data.test(), device=device, bf16=bf16, channels_last=cfg.channels_last,
                            task=task) if due else None  # fmt: skip
            last_lr = lr_at(
                progress.global_step - 1, total=total, warmup=warmup, peak=cfg.lr, schedule=cfg.schedule
            )
            record = epoch_record(progress, task, test, last_lr, precise_bn=bn)
            check_finite_model(model, record, progress, run_dir)
            progress.next_epoch(record)
            if main:
                write_metrics(run_dir, progress.history)
                save_state(run_dir, model, opt, cfg, data.info, progress)
            callbacks.on_epoch_end(record)

        if main:
            save_checkpoint(run_dir / MODEL_FILE, model, {"kind": "model", **meta(cfg, data.info, progress)})
        resumed = run.state == "unfinished"
        result = final_result(cfg, run_dir, progress, params, resumed=resumed, compiled=forward.is_compiled)
        if main:
            write_result(run_dir, result.to_dict())
        distributed.barrier(dist)  # no rank reports success before rank 0 has written the run
        return result
