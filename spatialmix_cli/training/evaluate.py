"""Evaluation of a model over uint8 batches: mean loss and the task's metric, in eval mode; and the record
of one checkpoint's clean test metrics (what ``spatialmix eval`` returns and its callbacks receive)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..data.batches import Batch
from .runtime import autocast, to_float
from .tasks import Classify, Task


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
        with autocast(device, bf16):
            output = model(inputs)
        n = labels.shape[0]
        loss += task.loss(output, targets) * n
        score += task.score(output, targets)
        count += n
    model.train(was_training)
    mean_loss, mean_score = loss.item() / max(count, 1), score.item() / max(count, 1)
    return {"loss": mean_loss, task.metric: task.summarize(mean_loss, mean_score), "n": count}


@dataclass
class EvalResult:
    """One JSON line: a checkpoint's clean test metrics. ``acc`` (a fraction) for classification,
    ``psnr`` (dB) for un-shuffling; the other is None."""

    checkpoint: str
    arch: str
    learn: str
    filters: str
    dataset: str
    task: str
    n: int
    loss: float
    acc: float | None
    psnr: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The record without the metric the task does not have."""
        record = asdict(self)
        record.pop("psnr" if self.task == "classify" else "acc")
        return record
