"""Attack specs and their torchattacks objects (L∞, pixel space [0, 1]).

The models normalise inside (a ``Normalize`` module), so ε is in pixel units and torchattacks'
``set_normalization_used`` is never needed. Defaults follow the paper (Sec. 4.3): FGSM and PGD-2 at
ε = 1/255; PGD's step size defaults to 2.5 ε / steps (Madry et al.) with a uniform random start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchattacks
from torch import nn

from ..errors import ConfigError, check_choice
from ..numbers import format_eps

METHODS = ("fgsm", "pgd", "autoattack")


@dataclass(frozen=True)
class AttackSpec:
    """One attack at one ε. ``steps``, ``alpha`` and ``random_start`` matter for PGD only."""

    method: str
    eps: float
    steps: int = 2
    alpha: float | None = None  # PGD step size (None: 2.5 * eps / steps)
    random_start: bool = True

    def __post_init__(self) -> None:
        check_choice("attack method", self.method, METHODS)
        if not 0 <= self.eps <= 1:
            raise ConfigError(f"eps must be in [0, 1] (pixel units), got {self.eps}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.alpha is not None and self.alpha <= 0:
            raise ConfigError(f"alpha must be > 0, got {self.alpha}")

    @property
    def step_size(self) -> float:
        if self.method == "fgsm":
            return self.eps
        return self.alpha if self.alpha is not None else 2.5 * self.eps / self.steps

    @property
    def label(self) -> str:
        name = {"fgsm": "FGSM", "pgd": f"PGD-{self.steps}", "autoattack": "AutoAttack"}[self.method]
        return f"{name} ε={format_eps(self.eps)}"


def build_attack(model: nn.Module, spec: AttackSpec, *, num_classes: int, seed: int) -> torchattacks.Attack:
    """The torchattacks object for ``spec`` on ``model`` (which must be in eval mode)."""
    if spec.method == "fgsm":
        return torchattacks.FGSM(model, eps=spec.eps)
    if spec.method == "pgd":
        return torchattacks.PGD(
            model, eps=spec.eps, alpha=spec.step_size, steps=spec.steps, random_start=spec.random_start
        )
    # The standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square), RobustBench's reference number.
    return torchattacks.AutoAttack(
        model, norm="Linf", eps=spec.eps, version="standard", n_classes=num_classes, seed=seed
    )


def perturb(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    seed: int,
) -> torch.Tensor:
    """Adversarial versions of ``images`` (in [0, 1]) crafted on ``model``.

    The attack's randomness (PGD's random start, AutoAttack) is seeded by ``seed`` inside a forked RNG,
    so results are reproducible and the caller's global RNG state is left untouched.
    """
    if spec.eps == 0 and spec.method == "autoattack":
        return images  # AutoAttack's sub-attacks divide by ε
    devices = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        attack = build_attack(model, spec, num_classes=num_classes, seed=seed)
        return attack(images, labels).detach()
