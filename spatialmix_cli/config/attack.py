"""What an attack run measures: methods × ε, attack settings, the sample, and the masking checks; and the
names of the attack methods and PGD variants (torch-free, so the CLI's help and the plan's checks read them
without the attacks themselves)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, check_choice, did_you_mean
from .eps import parse_eps
from .limits import MAX_STEPS, check_at_most, check_seed

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


@dataclass
class AttackPlan:
    methods: list[str] = field(default_factory=lambda: ["fgsm"])  # fgsm | pgd | autoattack | autoattack-fast
    eps: list[float] = field(default_factory=lambda: [1 / 255])  # L∞ radii in pixel units
    steps: int = 2  # PGD steps (the paper's PGD-2)
    pgd_variant: str = (
        DEFAULT_PGD_VARIANT  # paper: α = ε, no random start (Eq. 4) | madry: α = 2.5 ε / steps, random start
    )
    alpha: float | None = None  # PGD step size in pixel units (None: the variant's)
    random_start: bool | None = None  # PGD uniform random start (None: the variant's)
    n: int = 1000  # test images: the same seeded sample for every checkpoint (paired comparisons)
    batch_size: int = 250
    seed: int = 0  # picks the sample and seeds the attacks' randomness
    checks: bool = True  # run the gradient-masking checks (about 4 extra attack passes)
    large_eps: float = 0.5  # ε of the "drives accuracy to chance" check
    large_eps_steps: int = 10  # PGD steps of that check

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "attack") -> AttackPlan:
        return cls().updated(data, where)

    def updated(self, data: dict[str, Any], where: str = "attack") -> AttackPlan:
        """A copy with ``data`` on top; ``method`` / ``eps`` accept lists or comma-separated strings."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping of attack settings, got {type(data).__name__}")
        values = dataclasses.asdict(self)
        for key, value in data.items():
            key = {"method": "methods"}.get(key, key)
            if key not in values:
                raise ConfigError(f"unknown key '{where}.{key}'{did_you_mean(key, [*values, 'method'])}")
            values[key] = _coerce(key, value, _label(where, key))
        plan = AttackPlan(**values)
        plan.validate(where)
        return plan

    def validate(self, where: str = "attack") -> None:
        if not self.methods:
            raise ConfigError(f"{_label(where, 'methods')} needs at least one method ({', '.join(METHODS)})")
        for method in self.methods:
            check_choice("attack method", method, METHODS)
        check_choice(_label(where, "pgd_variant"), self.pgd_variant, PGD_VARIANTS)
        for key in ("n", "batch_size", "steps", "large_eps_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{_label(where, key)} must be >= 1, got {getattr(self, key)}")
        for key in ("steps", "large_eps_steps"):
            check_at_most(_label(where, key), getattr(self, key), MAX_STEPS)
        check_seed(_label(where, "seed"), self.seed)
        if self.alpha is not None and self.alpha <= 0:
            raise ConfigError(f"{_label(where, 'alpha')} must be > 0, got {self.alpha}")
        if not 0 < self.large_eps <= 1:
            raise ConfigError(f"{_label(where, 'large_eps')} must be in (0, 1], got {self.large_eps}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _label(where: str, key: str) -> str:
    """``--large-eps`` for command-line options, ``recipe.yaml: attack.large_eps`` for files."""
    if where == "option":
        return f"--{'method' if key == 'methods' else key.replace('_', '-')}"
    return f"{where}.{key}"


def _coerce(key: str, value: Any, label: str) -> Any:
    if key == "methods":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(m, str) for m in items):
            raise ConfigError(f"{label} must be one of {', '.join(METHODS)} or a list of them, got {value!r}")
        methods = [m.strip().lower() for m in items if m.strip()]
        if not methods:  # `--method ,` would attack nothing and report success
            raise ConfigError(f"{label} needs at least one method ({', '.join(METHODS)}), got {value!r}")
        return methods
    if key == "eps":
        return parse_eps(value, label)
    if key in ("alpha", "large_eps"):
        if value is None and key == "alpha":
            return None
        return parse_eps(value, label)[0]
    if key == "pgd_variant":
        if not isinstance(value, str):
            raise ConfigError(f"{label} must be one of {', '.join(PGD_VARIANTS)}, got {value!r}")
        return value.strip().lower()
    if key in ("random_start", "checks"):
        if value is None and key == "random_start":
            return None
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true/false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{label} must be an integer, got {value!r}")
    return value
