"""Every attack ``spatialmix attack`` knows, one :class:`AttackDef` each (the timm / torchattacks registry
shape): adding an attack is one entry in ``ATTACKS`` plus its build function.

``autoattack`` is the standard AutoAttack of Croce & Hein 2020 (fra31/auto-attack, ``version='standard'``,
RobustBench's reference), assembled from torchattacks' parts: APGD-CE (100 steps, 1 restart, ρ 0.75),
APGD-T (DLR, 100 steps, 1 restart, 9 target classes), FAB-T (100 steps, 1 restart, 9 target classes),
Square (5000 queries, 1 restart, p_init 0.8, no schedule rescaling); each sample meets the next attack only
while it is still classified correctly. ``autoattack-fast`` is torchattacks' own
``AutoAttack(version='standard')``, which is *not* that: 10 iterations per gradient attack, n_classes − 1
target classes and a rescaled Square schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the spec module reads this registry; the builders only read a spec's fields
    import torchattacks  # the builders import it when called: the registry's names need no torch
    from torch import nn

    from .build import AttackSpec

# (model in eval mode, spec, the model's number of classes, seed) → the torchattacks object
Builder = Callable[["nn.Module", "AttackSpec", int, int], "torchattacks.Attack"]

# The standard AutoAttack's settings (fra31/auto-attack, version='standard', norm Linf).
AA_STEPS, AA_RESTARTS, AA_RHO, AA_TARGETS = 100, 1, 0.75, 9
AA_SQUARE_QUERIES, AA_SQUARE_P_INIT = 5000, 0.8

# PGD's step size and start (--pgd-variant), by name. The default (AttackSpec, AttackPlan, the CLI) is the
# paper's, so `--method pgd --steps 2` is the paper's PGD-2; adversarial training asks for Madry's by name.
DEFAULT_PGD_VARIANT = "paper"
PGD_VARIANTS = {
    "paper": "the paper's Eq. 4 iterated `steps` times: α = ε from the clean image (no random start)",
    "madry": "α = 2.5 ε / steps from a uniform random start (Madry et al. 2018)",
}


@dataclass(frozen=True)
class AttackDef:
    """One attack method. ``label``: its name in results and reports (with ``uses_steps``, the spec adds
    ``-k (α=…, start)``); ``gradient``: a plain signed-gradient attack (run at ε = 0 for the ε = 0 check and
    its own transfer attack) rather than an AutoAttack ensemble (not run at ε = 0, transferred as PGD);
    ``min_classes``: the fewest classes the model may have."""

    label: str
    description: str
    build: Builder
    uses_steps: bool = False  # PGD-like: steps, step size α and random start matter
    gradient: bool = True
    min_classes: int = 1
    min_classes_why: str = ""  # what needs min_classes, for the error message


def build_fgsm(model: nn.Module, spec: AttackSpec, num_classes: int, seed: int) -> torchattacks.Attack:
    import torchattacks

    return torchattacks.FGSM(model, eps=spec.eps)


def build_pgd(model: nn.Module, spec: AttackSpec, num_classes: int, seed: int) -> torchattacks.Attack:
    import torchattacks

    return torchattacks.PGD(
        model, eps=spec.eps, alpha=spec.step_size, steps=spec.steps, random_start=spec.random_start
    )


def build_autoattack_fast(
    model: nn.Module, spec: AttackSpec, num_classes: int, seed: int
) -> torchattacks.Attack:
    import torchattacks

    return torchattacks.AutoAttack(
        model, norm="Linf", eps=spec.eps, version="standard", n_classes=num_classes, seed=seed
    )


def build_standard_autoattack(
    model: nn.Module, spec: AttackSpec, num_classes: int, seed: int
) -> torchattacks.MultiAttack:
    """fra31/auto-attack's ``version='standard'`` (L∞) from torchattacks' components."""
    import torchattacks

    common = dict(norm="Linf", eps=spec.eps, seed=seed, n_restarts=AA_RESTARTS)
    apgd = torchattacks.APGD(model, steps=AA_STEPS, loss="ce", rho=AA_RHO, **common)
    apgdt = torchattacks.APGDT(model, steps=AA_STEPS, rho=AA_RHO, n_classes=num_classes, **common)
    fab = torchattacks.FAB(model, steps=AA_STEPS, multi_targeted=True, n_classes=num_classes, **common)
    for targeted in (apgdt, fab):  # torchattacks derives n_classes - 1; the standard attacks top-9 classes
        targeted.n_target_classes = min(AA_TARGETS, num_classes - 1)
    square = torchattacks.Square(
        model, n_queries=AA_SQUARE_QUERIES, p_init=AA_SQUARE_P_INIT, resc_schedule=False, **common
    )
    return torchattacks.MultiAttack([apgd, apgdt, fab, square])


ATTACKS: dict[str, AttackDef] = {
    "fgsm": AttackDef(
        "FGSM", "FGSM (Goodfellow et al. 2015): one signed-gradient step of size ε", build_fgsm
    ),
    "pgd": AttackDef(
        "PGD", "PGD-k (see --pgd-variant for its step size and start)", build_pgd, uses_steps=True
    ),
    "autoattack": AttackDef(
        "AutoAttack (standard)",
        "the standard AutoAttack (Croce & Hein 2020): APGD-CE, APGD-T, FAB-T, Square",
        build_standard_autoattack,
        gradient=False,
        min_classes=4,  # AutoAttack's DLR losses compare the 1st, 3rd and 4th largest logits
        min_classes_why="its DLR loss",
    ),
    "autoattack-fast": AttackDef(
        "AutoAttack-fast (torchattacks, 10 iterations)",
        "torchattacks' AutoAttack 'standard': 10 iterations each, not the standard one",
        build_autoattack_fast,
        gradient=False,
        min_classes=4,
        min_classes_why="its DLR loss",
    ),
}

# Derived views: method → description, and the plain gradient attacks (FGSM, PGD).
METHODS = {name: d.description for name, d in ATTACKS.items()}
GRADIENT_ATTACKS = tuple(name for name, d in ATTACKS.items() if d.gradient)
