"""Attack specs: one attack at one ε, validated and named exactly (L∞, pixel space [0, 1]).

The models normalise inside (a ``Normalize`` module), so ε is in pixel units. Defaults follow the paper
(Sec. 4.3): FGSM and PGD-2 at ε = 1/255. PGD comes in two readings (``config.attack.PGD_VARIANTS``): the
paper's Eq. 4, x ← Π(x + ε·sign ∇ₓL) iterated ``steps`` times from the clean image (the default: α = ε, no
random start), so ``--method pgd --steps 2`` is the paper's PGD-2; and Madry et al.'s (step size α = 2.5 ε /
steps from a uniform random start), which adversarial training and the large-ε masking check ask for by
name. An explicit ``alpha`` (pixel units) or ``random_start`` overrides the variant's value for that field.

Torch-free (the registry imports torchattacks only to build an attack), so reports name attacks without it;
the torchattacks objects themselves are made in :mod:`.build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.attack import DEFAULT_PGD_VARIANT, PGD_VARIANTS, AttackPlan
from ..config.numbers import format_eps
from ..errors import ConfigError, check_choice
from .registry import ATTACKS, AttackDef

__all__ = ["AttackSpec", "attack_name", "check_classes", "eps_label"]


@dataclass(frozen=True)
class AttackSpec:
    """One attack at one ε. ``steps``, ``alpha``, ``random_start`` and ``pgd_variant`` matter for PGD only.
    ``alpha`` None takes the variant's step size (and the name says so, relative to ε); ``random_start``
    None is replaced by the variant's at construction, so a built spec always holds the start it uses."""

    method: str
    eps: float
    steps: int = 2
    alpha: float | None = None  # PGD step size in pixel units (None: the variant's)
    random_start: bool | None = None  # PGD uniform random start (None → the variant's, set on construction)
    pgd_variant: str = (
        DEFAULT_PGD_VARIANT  # paper: α = ε, no random start | madry: α = 2.5 ε / steps, random start
    )

    def __post_init__(self) -> None:
        check_choice("attack method", self.method, ATTACKS)
        check_choice("PGD variant", self.pgd_variant, PGD_VARIANTS)
        if not 0 <= self.eps <= 1:
            raise ConfigError(f"eps must be in [0, 1] (pixel units), got {self.eps}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.alpha is not None and self.alpha <= 0:
            raise ConfigError(f"alpha must be > 0, got {self.alpha}")
        if self.random_start is None:
            object.__setattr__(self, "random_start", self.pgd_variant == "madry")
        if not isinstance(self.random_start, bool):
            raise ConfigError(f"random_start must be true/false, got {self.random_start!r}")

    @classmethod
    def from_plan(cls, plan: AttackPlan, method: str, eps: float) -> AttackSpec:
        """``method`` at ``eps`` with the plan's PGD settings (steps, variant, α, start)."""
        return cls(method, eps, plan.steps, plan.alpha, plan.random_start, plan.pgd_variant)

    @property
    def attack(self) -> AttackDef:
        """The registry entry of ``method``."""
        return ATTACKS[self.method]

    @property
    def step_size(self) -> float:
        if not self.attack.uses_steps:
            return self.eps
        if self.alpha is not None:
            return self.alpha
        return self.eps * self._relative_alpha()

    @property
    def name(self) -> str:
        """The exact attack without ε, e.g. ``PGD-2 (α=ε, no random start)`` or ``PGD-2 (α=1.25ε, random start)``."""
        if not self.attack.uses_steps:
            return self.attack.label
        alpha = (
            format_eps(self.alpha)
            if self.alpha is not None
            else _times_eps(self._relative_alpha(), self.steps)
        )
        start = "random start" if self.random_start else "no random start"
        return f"{self.attack.label}-{self.steps} (α={alpha}, {start})"

    @property
    def label(self) -> str:
        return f"{self.name} ε={format_eps(self.eps)}"

    def _relative_alpha(self) -> float:
        return 1.0 if self.pgd_variant == "paper" else 2.5 / self.steps


def _times_eps(ratio: float, steps: int) -> str:
    """``ε``, ``1.25ε``; ``2.5ε/3`` where the ratio has no short exact decimal."""
    if ratio == 1:
        return "ε"
    short = f"{ratio:g}"
    return f"{short}ε" if float(short) == ratio else f"2.5ε/{steps}"


def check_classes(spec: AttackSpec, num_classes: int) -> None:
    """The model has at least the classes the attack needs (``AttackDef.min_classes``)."""
    need = spec.attack.min_classes
    if num_classes < need:
        raise ConfigError(
            f"{spec.name} needs at least {need} classes ({spec.attack.min_classes_why}), the model has {num_classes}"
        )


def attack_name(row: dict[str, Any]) -> str:
    """A result row's exact attack name; rows written before names were recorded get it rebuilt from
    their method, eps, steps, alpha and random_start (their ``autoattack`` was torchattacks' fast one)."""
    if isinstance(row.get("attack"), str):
        return row["attack"]
    method = str(row["method"])
    if method == "autoattack":
        method = "autoattack-fast"
    if method != "pgd":
        return AttackSpec(method, 0.0).name
    eps, steps = float(row["eps"]), int(row.get("steps") or 2)
    alpha = row.get("alpha")
    start = row.get("random_start")
    start = True if start is None else bool(start)  # old PGD always recorded it; its default was on
    madry = alpha is None or _close(float(alpha), 2.5 * eps / steps)
    paper = alpha is not None and _close(float(alpha), eps)
    if madry and paper:  # ε = 0: α = 0 either way; the start tells the variants' defaults apart
        madry = start
    if madry or paper:
        return AttackSpec("pgd", eps, steps, None, start, "madry" if madry else "paper").name
    return AttackSpec("pgd", eps, steps, float(alpha), start).name


def eps_label(row: dict[str, Any]) -> str:
    """A result row's ε as it recorded it (``eps_label``); rows without one get it from ``eps``."""
    label = row.get("eps_label")
    return label if isinstance(label, str) else format_eps(float(row["eps"]))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12)
