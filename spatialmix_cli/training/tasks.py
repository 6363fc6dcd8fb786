"""What a training step optimises and what evaluation measures: classification or pixel un-shuffling.

The trainer is shared (one loop, one checkpoint format, one resume path); a task only says how a batch
becomes (inputs, targets), the loss, and the metric: accuracy for ``classify``, PSNR for ``unshuffle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ..config.names import TASKS
from ..data.permutation import make_permutation, scramble
from ..errors import check_choice
from .psnr import psnr_from_mse


class Task(Protocol):
    name: str
    metric: str  # "acc" or "psnr": the key of the metric in metrics and epoch records

    def inputs_targets(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs and targets from float [0, 1] images and their labels."""
        ...

    def loss(
        self, output: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor: ...

    def score(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """A per-batch sum whose mean over samples goes into :meth:`summarize` (a 0-d tensor)."""
        ...

    def summarize(self, mean_loss: float, mean_score: float) -> float:
        """The metric from the epoch's mean loss and mean score."""
        ...


@dataclass(frozen=True)
class Classify:
    name: str = "classify"
    metric: str = "acc"

    def inputs_targets(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return images, labels

    def loss(self, output: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(output.float(), targets, label_smoothing=label_smoothing)

    def score(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim == 2:  # soft labels (MixUp / CutMix): the class with the largest share
            targets = targets.argmax(1)
        return (output.argmax(1) == targets).sum()

    def summarize(self, mean_loss: float, mean_score: float) -> float:
        return mean_score


class Unshuffle:
    """Scramble every image with the fixed permutation σ (seed ``perm_seed``); the target is the image."""

    name = "unshuffle"
    metric = "psnr"

    def __init__(self, image_size: int, perm_seed: int) -> None:
        self.perm = make_permutation(image_size, image_size, perm_seed)

    def inputs_targets(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.perm.device != images.device:
            self.perm = self.perm.to(images.device)  # once, not per batch
        return scramble(images, self.perm), images

    def loss(self, output: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.mse_loss(output.float(), targets)

    def score(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # Scored as images are: the output clamped to [0, 1] (the loss stays on the raw output). Per-image
        # MSE, summed; its mean over images is the MSE over every pixel (all images have the same size).
        error = (output.detach().double().clamp(0, 1) - targets.double()) ** 2
        return error.flatten(1).mean(1).sum()

    def summarize(self, mean_loss: float, mean_score: float) -> float:
        # Dataset-level PSNR = 10·log10(1 / MSE) of the clamped reconstructions (PSNR_CONVENTION).
        return psnr_from_mse(max(mean_score, 0.0))


def make_task(name: str, *, image_size: int, perm_seed: int = 0) -> Task:
    """The task named ``name`` (one of the config's ``TASKS``: each has its class here)."""
    if check_choice("task", name, TASKS) == "unshuffle":
        return Unshuffle(image_size, perm_seed)
    return Classify()
