"""Sanity checks that catch gradient masking (Athalye et al. 2018; Carlini et al. 2019).

Frozen random filters are exactly where masked gradients could fake robustness, so every attack run is
checked. Each check is a pure function of measured accuracies (fractions over the same ``n`` images);
"within sampling noise" means within :func:`noise` of each other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..config.numbers import format_eps

CHECKS = {
    "eps0_is_clean": "ε = 0 gives the clean accuracy exactly",
    "monotone_in_eps": "robust accuracy does not rise with ε",
    "pgd_beats_fgsm": "PGD-k is at least as strong as FGSM at the same ε",
    "large_eps_to_chance": "a large ε drives accuracy to about chance",
    "transfer_not_stronger": "a transfer attack is not stronger than the white-box one",
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise(a: float, b: float, n: int) -> float:
    """Two binomial standard errors at the pooled accuracy, plus one sample: a difference smaller than
    this between two accuracies on ``n`` images is not evidence of anything."""
    p = min(max((a + b) / 2, 0.0), 1.0)
    return 2 * math.sqrt(p * (1 - p) / max(n, 1)) + 1 / max(n, 1)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def eps0_is_clean(clean_acc: float, acc_at_0: float) -> Check:
    ok = acc_at_0 == clean_acc
    return Check("eps0_is_clean", ok, f"clean {_pct(clean_acc)}, ε=0 attack {_pct(acc_at_0)}")


def monotone_in_eps(curve: dict[float, float], n: int, attack: str = "") -> Check:
    """``curve`` maps ε → robust accuracy of one attack; a rise beyond noise fails."""
    points = sorted(curve.items())
    rises = [
        f"{_pct(a)} at ε={format_eps(ea)} → {_pct(b)} at ε={format_eps(eb)}"
        for (ea, a), (eb, b) in zip(points, points[1:], strict=False)
        if b > a + noise(a, b, n)
    ]
    detail = "; ".join(rises) if rises else " ≥ ".join(f"{_pct(a)}" for _, a in points)
    return Check("monotone_in_eps", not rises, f"{attack}: {detail}" if attack else detail)


def pgd_beats_fgsm(fgsm: dict[float, float], pgd: dict[float, float], n: int, attack: str) -> Check:
    """At every ε measured with both, the accuracy under PGD (named ``attack``, e.g.
    ``PGD-2 (α=1.25ε, random start)``) ≤ FGSM accuracy + noise."""
    common = sorted(set(fgsm) & set(pgd))
    worse = [
        f"ε={format_eps(e)}: {attack} {_pct(pgd[e])} > FGSM {_pct(fgsm[e])}"
        for e in common
        if pgd[e] > fgsm[e] + noise(pgd[e], fgsm[e], n)
    ]
    detail = "; ".join(worse) or ", ".join(
        f"ε={format_eps(e)}: {attack} {_pct(pgd[e])} ≤ FGSM {_pct(fgsm[e])}" for e in common
    )
    return Check("pgd_beats_fgsm", not worse, detail)


def large_eps_to_chance(
    acc: float, eps: float, num_classes: int, margin: float = 0.1, attack: str = ""
) -> Check:
    """A strong attack (named ``attack``) at a huge ε must leave at most chance + ``margin`` accuracy."""
    chance = 1 / num_classes
    ok = acc <= chance + margin
    detail = f"{_pct(acc)} at ε={format_eps(eps)} (chance {_pct(chance)})"
    return Check("large_eps_to_chance", ok, f"{attack}: {detail}" if attack else detail)


def transfer_not_stronger(
    white: dict[float, float], transfer: dict[float, float], n: int, attack: str = ""
) -> Check:
    """Examples crafted on another model must not beat the white-box attack beyond noise."""
    common = sorted(set(white) & set(transfer))
    stronger = [
        f"ε={format_eps(e)}: transfer {_pct(transfer[e])} < white-box {_pct(white[e])}"
        for e in common
        if transfer[e] < white[e] - noise(transfer[e], white[e], n)
    ]
    detail = "; ".join(stronger) or ", ".join(
        f"ε={format_eps(e)}: transfer {_pct(transfer[e])} ≥ white-box {_pct(white[e])}" for e in common
    )
    return Check("transfer_not_stronger", not stronger, f"{attack}: {detail}" if attack else detail)
