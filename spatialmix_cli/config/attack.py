"""What an attack run measures: methods × ε, attack settings, the sample, and the masking checks; and the
names of the attack methods and PGD variants (torch-free, so the CLI's help and the plan's checks read them
without the attacks themselves)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from . import coercion
from .coercion import key_label, validate_keys
from .eps import parse_eps
from .keys import ATTACK, DATA, RUNTIME, key
from .limits import MAX_STEPS, SEED, Bound, above, at_least, within, work_limit

# Every attack method, with its one line of help. ``attacks.registry.ATTACKS`` holds each one's label and
# builder under the same names (a test keeps the two in step).
METHODS = {
    "fgsm": "FGSM (Goodfellow et al. 2015): one signed-gradient step of size ε",
    "pgd": "PGD-k (see --pgd-variant for its step size and start)",
    "autoattack": "the standard AutoAttack (Croce & Hein 2020): APGD-CE, APGD-T, FAB-T, Square",
    "autoattack-fast": "torchattacks' AutoAttack 'standard': 10 iterations each, not the standard one",
}

# PGD's step size and start (--pgd-variant), by name. The default (AttackSpec, AttackPlan, the CLI) is the
# paper's, so `--method pgd --steps 2` is the paper's PGD-2; adversarial training asks for Madry's by name.
DEFAULT_PGD_VARIANT = "paper"
PGD_VARIANTS = {
    "paper": "the paper's Eq. 4 iterated `steps` times: α = ε from the clean image (no random start)",
    "madry": "α = 2.5 ε / steps from a uniform random start (Madry et al. 2018)",
}


# ε of the check that a large enough attack drives accuracy to chance: 0 would measure nothing
LARGE_EPS = Bound(lambda v: 0 < v <= 1, "in (0, 1], got {value}", 1)


def _parse_methods(value: Any, label: str) -> list[str]:
    """``fgsm,pgd`` or a list of names → the names, lower case."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(m, str) for m in items):
        raise ConfigError(f"{label} must be one of {', '.join(METHODS)} or a list of them, got {value!r}")
    methods = [m.strip().lower() for m in items if m.strip()]
    if not methods:  # `--method ,` would attack nothing and report success
        raise ConfigError(f"{label} needs at least one method ({', '.join(METHODS)}), got {value!r}")
    return methods


def _lower(value: Any, label: str) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@dataclass
class AttackPlan:
    """Every key declares its facts once (:func:`.keys.key`); `spatialmix attack`'s options are made from
    them, and a recipe's ``attack:`` section is read with them."""

    methods: list[str] = key(
        ["fgsm"],
        choices=METHODS,
        parse=_parse_methods,
        option="method",
        noun="attack method",
        panel=ATTACK,
        help=f"{' | '.join(METHODS)}, or a list: fgsm,pgd.",
    )
    eps: list[float] = key(
        [1 / 255],
        parse=parse_eps,
        fraction=True,
        panel=ATTACK,
        help="L∞ radius in pixel units; a list sweeps: 1/255,2/255.",
    )
    steps: int = key(2, bounds=(at_least(1), work_limit(MAX_STEPS)), panel=ATTACK, help="PGD steps.")
    pgd_variant: str = key(
        DEFAULT_PGD_VARIANT,
        choices=PGD_VARIANTS,
        parse=_lower,
        noun="PGD variant",
        panel=ATTACK,
        help="PGD's step size and start: " + "; ".join(f"{k}: {v}" for k, v in PGD_VARIANTS.items()) + ".",
    )
    alpha: float | None = key(
        None,
        bounds=(above(0), within(0, 1, note=" (pixel units)")),
        fraction=True,
        panel=ATTACK,
        help="PGD step size in pixel units (overrides the variant's).",
    )
    random_start: bool | None = key(
        None, panel=ATTACK, help="PGD uniform random start (overrides the variant's; default: the variant's)."
    )
    n: int = key(1000, bounds=at_least(1), panel=DATA, help="Test images (the same for every checkpoint).")
    batch_size: int = key(250, bounds=at_least(1), panel=RUNTIME, help="Images per step.")
    seed: int = key(0, bounds=SEED, panel=RUNTIME, help="Picks the sample; seeds the attacks.")
    checks: bool = key(True, panel=ATTACK, help="Gradient-masking checks (about 4 extra attack passes).")
    large_eps: float = key(
        0.5, bounds=LARGE_EPS, fraction=True, panel=ATTACK, help="ε of the 'accuracy → chance' check."
    )
    large_eps_steps: int = key(
        10, bounds=(at_least(1), work_limit(MAX_STEPS)), panel=ATTACK, help="PGD steps of that check."
    )

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "attack") -> AttackPlan:
        return cls().updated(data, where)

    def updated(self, data: dict[str, Any], where: str = "attack") -> AttackPlan:
        """A copy with ``data`` on top (``method`` / ``eps``: lists or comma-separated strings); with
        ``where`` "option", errors name the options (``--large-eps``)."""
        return coercion.updated(self, data, where, what="attack settings", options=True)

    def validate(self, where: str = "attack") -> None:
        if not self.methods:
            label = key_label(AttackPlan, where, "methods", options=True)
            raise ConfigError(f"{label} needs at least one method ({', '.join(METHODS)})")
        validate_keys(self, where, options=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
