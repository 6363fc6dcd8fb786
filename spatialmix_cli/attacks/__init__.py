"""Adversarial robustness: torchattacks FGSM / PGD / AutoAttack on models that normalise inside, on a
fixed seeded sample, with checks that the measured robustness is not gradient masking."""

from .build import METHODS, AttackSpec, build_attack, perturb
from .checks import CHECKS, Check
from .eps import parse_eps
from .plan import AttackPlan
from .robustness import AttackResult, Sample, attack_checkpoint, correct_under_attack, load_sample, record

__all__ = [
    "CHECKS",
    "METHODS",
    "AttackPlan",
    "AttackResult",
    "AttackSpec",
    "Check",
    "Sample",
    "attack_checkpoint",
    "build_attack",
    "correct_under_attack",
    "load_sample",
    "parse_eps",
    "perturb",
    "record",
]
