"""Adversarial robustness: torchattacks FGSM / PGD (Madry's or the paper's) / AutoAttack on models that normalise inside, on a
fixed seeded sample, with checks that the measured robustness is not gradient masking."""

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
