"""Batch sources for the trainer. A source yields ``(uint8 images on the device, int64 labels)``.

Every epoch's order and every batch's augmentation are drawn from generators seeded by
``(seed, purpose, epoch, step)`` (:func:`~spatialmix_cli.seeding.derive_seed`), so a run resumed at any step sees exactly the batches an uninterrupted run sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch

from ..errors import ConfigError
from ..seeding import derive_seed
from .augment import augment

Batch = tuple[torch.Tensor, torch.Tensor]


class BatchSource(Protocol):
    steps_per_epoch: int
    num_examples: int

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]: ...

    def sample(self, images: int, purpose: str) -> Iterator[Batch]: ...


class TensorBatches:
    """Shuffled, augmented mini-batches from uint8 tensors that already live on the device.

    ``batch_size`` is the global batch; with ``shard=(rank, world)`` each step yields this rank's
    ``batch_size / world`` images of it. The last incomplete batch of an epoch is dropped (BatchNorm needs more than one image, and every step
    then has the same size); with fewer images than ``batch_size`` the single batch is all of them.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        seed: int,
        crop_pad: int = 0,
        hflip: bool = False,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        side = min(images.shape[-2:])
        if crop_pad > side:
            raise ConfigError(
                f"crop_pad {crop_pad} is larger than the image side ({side} pixels): most random crops would "
                f"be all padding; use at most {side}"
            )
        self.rank, self.world = shard
        self.images = images
        self.labels = labels
        self.num_examples = images.shape[0]
        self.batch_size = min(batch_size, self.num_examples)
        self.steps_per_epoch = self.num_examples // self.batch_size
        self.seed = seed
        self.crop_pad = crop_pad
        self.hflip = hflip

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = self._order(derive_seed(self.seed, "order", epoch))
        return self._batches(order, range(start_step, self.steps_per_epoch), ("augment", epoch))

    def sample(self, images: int, purpose: str) -> Iterator[Batch]:
        """Whole training batches of at most ``images`` images (at least one batch), made as ``epoch``
        makes them (batch size, augmentation, this rank's share), but in an order and with augmentation
        drawn from streams of their own, ``(seed, purpose, ...)``: the training streams stay untouched."""
        steps = max(1, min(self.steps_per_epoch, images // self.batch_size))
        order = self._order(derive_seed(self.seed, purpose, "order"))
        return self._batches(order, range(steps), (purpose, "augment"))

    def _order(self, seed: int) -> torch.Tensor:
        order = torch.randperm(self.num_examples, generator=torch.Generator().manual_seed(seed))
        return order.to(self.images.device)

    def _batches(self, order: torch.Tensor, steps: range, stream: tuple[str | int, ...]) -> Iterator[Batch]:
        for step in steps:
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            generator = torch.Generator().manual_seed(derive_seed(self.seed, *stream, step))
            images = augment(self.images[idx], crop_pad=self.crop_pad, hflip=self.hflip, generator=generator)
            labels = self.labels[idx]
            if self.world > 1:
                # This rank's share of the global batch. The whole batch is augmented first (cheap: crops
                # and flips of uint8) so every image gets the same draws as in a single-process run.
                images, labels = images[self.rank :: self.world], labels[self.rank :: self.world]
            yield images, labels


def eval_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> Iterator[Batch]:
    """The evaluation set in order, without augmentation."""
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]
