"""Every attack ``spatialmix attack`` knows, one :class:`AttackDef` each (the timm / torchattacks registry
shape), keyed by the names of ``config.attack.METHODS``: adding an attack is its name and line of help
there, and here one entry in ``ATTACKS`` plus its build function. Torch-free until an attack is built.

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
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torchattacks
    from torch import nn

# (model in eval mode, *, eps, steps, alpha, random_start, num_classes, seed) → the torchattacks object. Every
# builder is called with all of these keywords (``build.build_attack``) and reads the ones it uses: ``alpha``
# is PGD's step size in pixel units, already resolved from its variant; ``num_classes`` the model's.
Builder = Callable[..., "torchattacks.Attack"]

# The standard AutoAttack's settings (fra31/auto-attack, version='standard', norm Linf).
AA_STEPS, AA_RESTARTS, AA_RHO, AA_TARGETS = 100, 1, 0.75, 9
AA_SQUARE_QUERIES, AA_SQUARE_P_INIT = 5000, 0.8


@dataclass(frozen=True)
class AttackDef:
    """One attack method (its name and line of help: ``config.attack.METHODS``). ``label``: its name in
    results and reports (with ``uses_steps``, the spec adds ``-k (α=…, start)``); ``gradient``: a plain
    signed-gradient attack (run at ε = 0 for the ε = 0 check and its own transfer attack) rather than an
    AutoAttack ensemble (not run at ε = 0, transferred as PGD); ``min_classes``: the fewest classes the
    model may have."""

    label: str
    build: Builder
    uses_steps: bool = False  # PGD-like: steps, step size α and random start matter
    gradient: bool = True
    min_classes: int = 1
    min_classes_why: str = ""  # what needs min_classes, for the error message


def _torchattacks() -> ModuleType:
    import torchattacks  # on first build only: the registry's labels serve the torch-free reports too

    return torchattacks


def build_fgsm(model: nn.Module, *, eps: float, **_: object) -> torchattacks.Attack:
    return _torchattacks().FGSM(model, eps=eps)


def build_pgd(
    model: nn.Module, *, eps: float, steps: int, alpha: float, random_start: bool, **_: object
) -> torchattacks.Attack:
    return _torchattacks().PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)


def build_autoattack_fast(
    model: nn.Module, *, eps: float, num_classes: int, seed: int, **_: object
) -> torchattacks.Attack:
    return _torchattacks().AutoAttack(
        model, norm="Linf", eps=eps, version="standard", n_classes=num_classes, seed=seed
    )


def build_standard_autoattack(
    model: nn.Module, *, eps: float, num_classes: int, seed: int, **_: object
) -> torchattacks.MultiAttack:
    """fra31/auto-attack's ``version='standard'`` (L∞) from torchattacks' components."""
    ta = _torchattacks()
    common = dict(norm="Linf", eps=eps, seed=seed, n_restarts=AA_RESTARTS)
    apgd = ta.APGD(model, steps=AA_STEPS, loss="ce", rho=AA_RHO, **common)
    apgdt = ta.APGDT(model, steps=AA_STEPS, rho=AA_RHO, n_classes=num_classes, **common)
    fab = ta.FAB(model, steps=AA_STEPS, multi_targeted=True, n_classes=num_classes, **common)
    for targeted in (apgdt, fab):  # torchattacks derives n_classes - 1; the standard attacks top-9 classes
        targeted.n_target_classes = min(AA_TARGETS, num_classes - 1)
    square = ta.Square(
        model, n_queries=AA_SQUARE_QUERIES, p_init=AA_SQUARE_P_INIT, resc_schedule=False, **common
    )
    return ta.MultiAttack([apgd, apgdt, fab, square])


ATTACKS: dict[str, AttackDef] = {
    "fgsm": AttackDef("FGSM", build_fgsm),
    "pgd": AttackDef("PGD", build_pgd, uses_steps=True),
    "autoattack": AttackDef(
        "AutoAttack (standard)",
        build_standard_autoattack,
        gradient=False,
        min_classes=4,  # AutoAttack's DLR losses compare the 1st, 3rd and 4th largest logits
        min_classes_why="its DLR loss",
    ),
    "autoattack-fast": AttackDef(
        "AutoAttack-fast (torchattacks, 10 iterations)",
        build_autoattack_fast,
        gradient=False,
        min_classes=4,
        min_classes_why="its DLR loss",
    ),
}

# The plain gradient attacks (FGSM, PGD).
GRADIENT_ATTACKS = tuple(name for name, d in ATTACKS.items() if d.gradient)
