"""Adversarial robustness: torchattacks FGSM / PGD (Madry's or the paper's) / AutoAttack on models that normalise inside, on a
fixed seeded sample, with checks that the measured robustness is not gradient masking."""

from ..lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        ".build": ("build_attack", "components", "perturb"),
        ".spec": ("AttackSpec", "attack_name"),
        ".robustness": ("AttackResult", "Sample", "attack_checkpoint", "load_sample", "record"),
    },
)
