"""Adversarial robustness: torchattacks FGSM / PGD (Madry's or the paper's) / AutoAttack on models that normalise inside, on a
fixed seeded sample, with checks that the measured robustness is not gradient masking."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the real imports, for type checkers; at run time each is read on first use
    from .build import (
        PGD_VARIANTS,
        AttackSpec,
        attack_name,
        build_attack,
        components,
        eps_label,
        perturb,
    )
    from .checks import CHECKS, Check
    from .eps import parse_eps
    from .plan import AttackPlan
    from .registry import ATTACKS, AUTOATTACKS, GRADIENT_ATTACKS, METHODS, AttackDef
    from .robustness import AttackResult, Sample, attack_checkpoint, correct_under_attack, load_sample, record

__getattr__ = lazy_exports(
    __name__,
    {
        "PGD_VARIANTS": ".registry",
        "AttackSpec": ".build",
        "attack_name": ".build",
        "build_attack": ".build",
        "components": ".build",
        "eps_label": ".build",
        "perturb": ".build",
        "CHECKS": ".checks",
        "Check": ".checks",
        "parse_eps": ".eps",
        "AttackPlan": ".plan",
        "ATTACKS": ".registry",
        "AUTOATTACKS": ".registry",
        "GRADIENT_ATTACKS": ".registry",
        "METHODS": ".registry",
        "AttackDef": ".registry",
        "AttackResult": ".robustness",
        "Sample": ".robustness",
        "attack_checkpoint": ".robustness",
        "correct_under_attack": ".robustness",
        "load_sample": ".robustness",
        "record": ".robustness",
    },
)

__all__ = [
    "ATTACKS",
    "AUTOATTACKS",
    "CHECKS",
    "GRADIENT_ATTACKS",
    "METHODS",
    "PGD_VARIANTS",
    "AttackDef",
    "AttackPlan",
    "AttackResult",
    "AttackSpec",
    "Check",
    "Sample",
    "attack_checkpoint",
    "attack_name",
    "build_attack",
    "components",
    "correct_under_attack",
    "eps_label",
    "load_sample",
    "parse_eps",
    "perturb",
    "record",
]
