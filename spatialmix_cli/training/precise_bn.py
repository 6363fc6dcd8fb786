"""Precise BatchNorm: the running statistics recomputed over training batches before the final test
evaluation, the weights unchanged.

BatchNorm's running averages (momentum 0.1: about the last ten steps) average statistics of weights that
were still moving. A long run's last steps barely move them, so the averages fit the final weights; a run
of a few dozen steps ends with the statistics of a model it no longer is, and in eval mode it can score
near chance while the same weights do well with batch statistics (ConvMixer-64/4 on 2000 Fashion-MNIST
images, one epoch, 15 steps: 12 % test accuracy at 53 % training accuracy). The pass is
``torch.optim.swa_utils.update_bn``: it resets the running statistics and averages them, with equal
weight, over the batches given (momentum None), in train mode, without gradients.

``precise_bn`` (a config key) says when: ``auto`` runs the pass for runs of fewer than :data:`AUTO_STEPS`
optimizer steps, ``always`` and ``never`` say what they say. The batches are training batches as the
trainer makes them (batch size, crop / flip augmentation, this rank's share) from streams of their own;
no MixUp / CutMix and no adversarial examples: the statistics of the images the model is tested on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from ..config.train import PRECISE_BN_AUTO_STEPS as AUTO_STEPS
from ..config.train import TrainConfig
from ..layers.learn import BATCH_NORMS
from . import distributed
from .prepare import TrainData
from .runtime import autocast, to_float, use_bf16

IMAGES = 4096  # training images the pass sees at most (whole training batches, at least one)
PURPOSE = "precise_bn"  # the random streams of its batch order and augmentation


def wanted(mode: str, total_steps: int) -> bool:
    """Whether a run of ``total_steps`` optimizer steps under ``precise_bn: mode`` recomputes."""
    return mode == "always" or (mode == "auto" and total_steps < AUTO_STEPS)


def batchnorms(model: nn.Module) -> list[nn.Module]:
    """The modules whose running statistics ``update_bn`` recomputes (torch's batch norms, named by their
    public classes: ``layers.learn.BATCH_NORMS``)."""
    return [m for m in model.modules() if isinstance(m, BATCH_NORMS)]


@torch.no_grad()
def recompute(
    model: nn.Module,
    data: TrainData,
    *,
    device: torch.device,
    bf16: bool,
    channels_last: bool,
    dist: distributed.Dist | None = None,
    images: int = IMAGES,
) -> dict[str, Any]:
    """Recompute ``model``'s BatchNorm running statistics over at most ``images`` training images and
    return what ran: ``{"ran", "images", "batches"}`` (``{"ran": False}`` without BatchNorm; no timing, so
    a resumed run's records equal an uninterrupted one's: docs/design.md gives the cost).
    Distributed, each rank averages over its shares and the ranks then average their statistics, so every
    rank holds the same buffers (those of the whole batches)."""
    norms = batchnorms(model)
    if not norms:
        return {"ran": False}
    count = {"images": 0, "batches": 0}

    def inputs() -> Any:
        for images_, labels in data.train.sample(images, PURPOSE):
            count["images"] += labels.shape[0]
            count["batches"] += 1
            yield data.task.inputs_targets(to_float(images_, channels_last), labels)[0]

    with autocast(device, bf16):
        update_bn(inputs(), model)
    if dist is not None:
        distributed.average_over_ranks(
            [b for m in norms for b in (m.running_mean, m.running_var) if b is not None]
        )
    world = dist.world if dist is not None else 1
    return {"ran": True, "images": count["images"] * world, "batches": count["batches"]}


def settle(
    cfg: TrainConfig,
    model: nn.Module,
    data: TrainData,
    total_steps: int,
    device: torch.device,
    dist: distributed.Dist | None = None,
    note: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """The trainer's one call before its final test evaluation: recompute where ``cfg.precise_bn`` says
    so (a ``note`` when ``auto`` decided it for a short run), or warn when a short run keeps statistics
    that have not settled. Returns :func:`recompute`'s record, ``{"ran": False}`` when it did not run."""
    short = total_steps < AUTO_STEPS and bool(batchnorms(model))
    mode = cfg.precise_bn
    if not wanted(mode, total_steps):
        if short and (dist is None or dist.main):
            warnings.warn(
                f"a run of {total_steps} optimizer steps is too short for BatchNorm's running statistics to "
                "settle: the test accuracy may be far below the training accuracy (precise_bn=auto or always "
                "recomputes them before the test evaluation)",
                stacklevel=2,
            )
        return {"ran": False}
    bf16 = use_bf16(cfg, device)
    done = recompute(model, data, device=device, bf16=bf16, channels_last=cfg.channels_last, dist=dist)
    if short and mode == "auto":
        note(
            f"{total_steps} optimizer steps are too few for BatchNorm's running statistics to settle: "
            f"recomputed them over {done['images']} training images before the test evaluation "
            "(precise_bn=never keeps them)"
        )
    return done
