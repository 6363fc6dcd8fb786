"""The torchattacks objects of attack specs (:mod:`.spec`), what an AutoAttack is made of, and
:func:`perturb`, which crafts adversarial images reproducibly. The models normalise inside (a ``Normalize``
module), so ε is in pixel units and torchattacks' ``set_normalization_used`` is never needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torchattacks
from torch import nn

from .spec import AttackSpec, check_classes

__all__ = ["build_attack", "components", "perturb"]


def build_attack(model: nn.Module, spec: AttackSpec, *, num_classes: int, seed: int) -> torchattacks.Attack:
    """The torchattacks object for ``spec`` on ``model`` (which must be in eval mode)."""
    check_classes(spec, num_classes)
    return spec.attack.build(
        model,
        eps=spec.eps,
        steps=spec.steps,
        alpha=spec.step_size,
        random_start=bool(spec.random_start),
        num_classes=num_classes,
        seed=seed,
    )


def components(attack: torchattacks.Attack) -> list[dict[str, Any]] | None:
    """What an AutoAttack is made of, read off its torchattacks objects; None for a single attack."""
    if isinstance(attack, torchattacks.AutoAttack):
        # torchattacks (3.5) keeps AutoAttack's MultiAttack in a private attribute and has no public accessor
        attack = attack._autoattack
    if not isinstance(attack, torchattacks.MultiAttack):
        return None
    return [_component(a) for a in attack.attacks]


def _component(a: torchattacks.Attack) -> dict[str, Any]:
    if isinstance(a, torchattacks.APGDT):
        return {
            "name": "APGD-T",
            "steps": a.steps,
            "restarts": a.n_restarts,
            "target_classes": a.n_target_classes,
        }
    if isinstance(a, torchattacks.APGD):
        return {"name": f"APGD-{a.loss.upper()}", "steps": a.steps, "restarts": a.n_restarts}
    if isinstance(a, torchattacks.FAB):
        out = {"name": "FAB-T" if a.multi_targeted else "FAB", "steps": a.steps, "restarts": a.n_restarts}
        return {**out, "target_classes": a.n_target_classes} if a.multi_targeted else out
    if isinstance(a, torchattacks.Square):
        return {
            "name": "Square",
            "queries": a.n_queries,
            "restarts": a.n_restarts,
            "p_init": a.p_init,
            "resc_schedule": a.rescale_schedule,
        }
    return {"name": type(a).__name__}


def perturb(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    seed: int,
    on_attack: Callable[[torchattacks.Attack], None] | None = None,
) -> torch.Tensor:
    """Adversarial versions of ``images`` (in [0, 1]) crafted on ``model``.

    The attack's randomness (PGD's random start, AutoAttack) is seeded by ``seed`` inside a forked RNG,
    so results are reproducible and the caller's global RNG state is left untouched. ``on_attack`` sees
    the torchattacks object before it runs (at ε = 0 an AutoAttack is built but not run).
    """
    devices = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        attack = build_attack(model, spec, num_classes=num_classes, seed=seed)
        if on_attack is not None:
            on_attack(attack)
        if spec.eps == 0 and not spec.attack.gradient:
            return images  # AutoAttack's sub-attacks divide by ε
        return attack(images, labels).detach()
