"""Matching runs that differ only in the keys a comparison varies, and mean ± std over seeds."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...attacks.spec import attack_name
from ...config.banks import parse_bank
from ...config.keys import specs
from ...config.train import TrainConfig
from .collect import Run

# The model sizes a setting label names, with their short names (``w128 d8``): the keys declared ``label=``.
SIZE_LABELS = {name: s.label for name, s in specs(TrainConfig).items() if s.label is not None}


@dataclass(frozen=True)
class Stat:
    """Mean and sample std of a cell's values, and how many runs are behind it."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        vals = [float(v) for v in values]
        if not vals:
            return cls(math.nan, None, 0)
        return cls(statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else None, len(vals))

    def fmt(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        text = f"{self.mean * scale:.{digits}f}"
        if self.std is not None:
            text += f" ± {self.std * scale:.{digits}f}"
        return f"{text}{unit} (n={self.n})"


def groups(
    runs: list[Run], vary: tuple[str, ...], where: Callable[[Run], bool] = lambda r: True
) -> list[dict[tuple[Any, ...], list[Run]]]:
    """Runs that share every identity key except ``vary`` and the seed, as ``{values of vary: [runs over
    seeds]}``, one dict per group (only groups with at least two distinct values)."""
    by_key: dict[tuple[Any, ...], dict[tuple[Any, ...], list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if where(run):
            by_key[run.key((*vary, "seed"))][tuple(run.get(k) for k in vary)].append(run)
    return [dict(g) for g in by_key.values() if len(g) >= 2]


def describe(run: Run, skip: tuple[str, ...]) -> str:
    """A short label of the setting a group shares (dataset, arch and sizes), leaving out ``skip``."""
    cfg = run.config
    parts = [cfg.dataset, cfg.arch]
    for key, short in SIZE_LABELS.items():
        value = getattr(cfg, key)
        if key not in skip and value is not None:
            parts.append(f"{short}{value}")
    if "filters" not in skip and cfg.filters != "random":
        parts.append(parse_bank(cfg.filters).label)  # smooth σ=0.5
    if "adv" not in skip and cfg.adv != "none":
        parts.append(f"{cfg.adv}-trained")
    if cfg.image_size is not None:
        parts.append(f"{cfg.image_size}px")
    # The training budget, so two settings that differ only in it get different labels.
    parts.append(f"({cfg.subset if cfg.subset is not None else 'all'} img × {cfg.epochs} ep)")
    return " ".join(parts)


def metric_stat(runs: list[Run]) -> Stat:
    return Stat.of(r.metric for r in runs if r.metric is not None)


def metric_by_seed(runs: list[Run]) -> dict[int, float]:
    """The runs' test metric keyed by seed (a cell's runs differ only in the seed)."""
    return {r.config.seed: float(r.metric) for r in runs if r.metric is not None}


def _same_eps(a: dict[str, Any], eps: float) -> bool:
    return abs(float(a.get("eps", -1)) - eps) < 1e-9


def attack_rows(run: Run, attack: str, eps: float) -> list[dict[str, Any]]:
    """The run's white-box results of the attack named ``attack`` (``attacks.attack_name``) at ``eps``."""
    return [
        a for a in run.attacks if a.get("source") is None and _same_eps(a, eps) and attack_name(a) == attack
    ]


def attack_points(
    runs: list[Run], methods: tuple[str, ...] = ("fgsm", "pgd"), pgd_steps: int | None = None
) -> list[tuple[str, float]]:
    """Every (attack name, ε > 0) that some run was attacked with, for ``methods``; PGD only with
    ``pgd_steps`` steps when given."""
    found = set()
    for r in runs:
        for a in r.attacks:
            if a.get("method") not in methods or float(a["eps"]) <= 0:
                continue
            if pgd_steps is not None and a.get("method") == "pgd" and a.get("steps") != pgd_steps:
                continue
            found.add((attack_name(a), float(a["eps"])))
    return sorted(found)


def rows_by_seed(runs: list[Run], attack: str, eps: float) -> dict[int, dict[str, Any]]:
    """Each seed's newest result of ``attack`` at ``eps``."""
    out = {}
    for r in runs:
        rows = attack_rows(r, attack, eps)
        if rows:
            out[r.config.seed] = rows[-1]
    return out


def robust_stat(runs: list[Run], attack: str, eps: float) -> tuple[Stat, bool]:
    """Robust accuracy over the runs' results of ``attack`` at ``eps``, and whether any carries flags."""
    rows = list(rows_by_seed(runs, attack, eps).values())
    return Stat.of(row["robust_acc"] for row in rows), any(row.get("flags") for row in rows)


def attack_clean_stat(runs: list[Run], eps: float) -> Stat:
    """Clean accuracy on the attacked sample (paired with the robust numbers), from the attack results."""
    rows = [row for r in runs for row in [a for a in r.attacks if _same_eps(a, eps)][-1:]]
    return Stat.of(row["clean_acc"] for row in rows)
