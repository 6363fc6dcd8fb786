"""The paper's claims, each with a verdict from the user's runs, the rule, and the numbers that decided it.

Every comparison pairs runs that differ only in what the claim varies and share a seed (the same init
stream and data order) and states the mean paired difference with a 95 % confidence interval
(:mod:`.stats`): Student-t over seeds, plus, for attack results, the sampling error of the fixed test
images. A comparison **holds** when its interval lies inside the claim's region, **does not hold** when it
lies wholly outside, and is **inconclusive** otherwise; a claim over several settings holds only if every
one holds and fails if any one fails. Fewer than two paired seeds give ``not enough runs``. A claim resting
on attack results that failed a gradient-masking check is marked ``flagged``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ...attacks.registry import GRADIENT_ATTACKS
from ...attacks.robustness import hex_to_bits
from ...config.banks import parse_bank
from ...config.limits import DEFAULT_LEVEL
from .collect import Run
from .compare import attack_points, describe, groups, metric_by_seed, rows_by_seed
from .stats import (
    UNKNOWN,
    Interval,
    Region,
    ToDecide,
    all_of,
    any_of,
    paired_binomial_var,
    paired_interval,
    unpaired_binomial_var,
    welch_interval,
)

CI_RULE = (
    "95% CI of the paired (same-seed) difference: t over seeds"
    " (⊕ the binomial error of the attacked test images); holds = CI inside the region,"
    " does not hold = CI outside it, else inconclusive (with the seeds, or banks, that would decide it at the"
    " same mean and spread)"
)
PTS = 100.0  # accuracies are fractions; the report speaks in points


@dataclass
class Comparison:
    """One paired comparison: what was compared, its interval, the region the claim needs, the verdict."""

    setting: str
    quantity: str
    interval: Interval | None
    region: str
    verdict: str
    to_decide: ToDecide | None = None  # inconclusive only: the samples that would decide it

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = self.interval.to_dict() if self.interval else None
        out["to_decide"] = self.to_decide.to_dict() if self.to_decide else None
        return out


@dataclass
class Claim:
    id: int
    text: str
    rule: str  # the test applied: the compared quantity, the region, and how the interval is made
    verdict: str = UNKNOWN
    # one line per comparison, interval and verdict included
    evidence: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    flagged: bool = False  # some attack result behind it failed a masking check

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["comparisons"] = [c.to_dict() for c in self.comparisons]
        return out

    def compare(
        self,
        setting: str,
        quantity: str,
        interval: Interval | None,
        region: Region,
        scale: float = PTS,
        unit: str = " points",
        digits: int = 1,
    ) -> str:
        verdict = region.verdict(interval)
        where = region.describe(scale, unit)
        numbers = interval.fmt(scale, unit, digits) if interval else "fewer than 2 paired seeds"
        decide = region.to_decide(interval)
        self.comparisons.append(Comparison(setting, quantity, interval, where, verdict, decide))
        note = f"; {decide.text()}" if decide else ""
        self.evidence.append(f"{setting}: {quantity} = {numbers} → {verdict} (needs {where}{note})")
        return verdict


def _clean(run: Run) -> bool:
    return run.config.task == "classify" and run.config.adv == "none"


def _classify(run: Run) -> bool:
    return run.config.task == "classify"


def _pair(
    claim: Claim, runs: list[Run], vary: str, a: str, b: str, region: Region, where: Callable[[Run], bool]
) -> list[str]:
    """For every group of runs that differ only in ``vary`` and have both ``a`` and ``b``: a − b."""
    verdicts = []
    for g in groups(runs, (vary,), where):
        if (a,) in g and (b,) in g:
            interval = paired_interval(metric_by_seed(g[(a,)]), metric_by_seed(g[(b,)]))
            setting = describe(g[(a,)][0], (vary,))
            verdicts.append(claim.compare(setting, f"{a} − {b}", interval, region, *_units(g[(a,)][0])))
    return verdicts


def _units(run: Run) -> tuple[float, str]:
    return (1.0, " dB") if run.config.task == "unshuffle" else (PTS, " points")


def chans_near_full(runs: list[Run], max_gap: float = 3.0) -> Claim:
    claim = Claim(
        1,
        "chans is within a few points of full at every depth",
        f"every setting run with both: full − chans test accuracy ≤ {max_gap:g} points",
    )
    claim.verdict = all_of(_pair(claim, runs, "learn", "full", "chans", Region(high=max_gap / PTS), _clean))
    return claim


def space_far_below(runs: list[Run], min_gap: float = 5.0) -> Claim:
    claim = Claim(
        2,
        "space is far below chans",
        f"every setting run with both: chans − space test accuracy > {min_gap:g} points",
    )
    claim.verdict = all_of(_pair(claim, runs, "learn", "chans", "space", Region(low=min_gap / PTS), _clean))
    return claim


def filter_order(runs: list[Run]) -> Claim:
    order = ("random", "same", "box", "identity")
    claim = Claim(
        3,
        "random frozen filters beat same > box > identity",
        "chans runs differing only in the frozen bank: each of random − same, same − box, box − identity "
        "test accuracy > 0",
    )
    verdicts = []
    for g in groups(runs, ("filters",), lambda r: _clean(r) and r.config.learn == "chans"):
        if all((f,) in g for f in order):
            setting = describe(g[("random",)][0], ("filters",))
            for a, b in zip(order, order[1:], strict=False):
                interval = paired_interval(metric_by_seed(g[(a,)]), metric_by_seed(g[(b,)]))
                verdicts.append(claim.compare(setting, f"{a} − {b}", interval, Region(low=0.0)))
    claim.verdict = all_of(verdicts)
    return claim


def gap_shrinks_with_width(runs: list[Run]) -> Claim:
    claim = Claim(
        4,
        "the chans–full gap shrinks as width grows",
        "settings run with full and chans at two or more widths: (full − chans at the smallest width) − "
        "(full − chans at the largest) > 0",
    )
    verdicts = []
    for g in groups(runs, ("learn", "width"), _clean):
        widths = sorted({w for (_, w) in g if ("full", w) in g and ("chans", w) in g and w is not None})
        if len(widths) < 2:
            continue

        def gap(w: int, g: dict = g) -> dict[int, float]:
            full, chans = metric_by_seed(g[("full", w)]), metric_by_seed(g[("chans", w)])
            return {s: full[s] - chans[s] for s in set(full) & set(chans)}

        small, large = widths[0], widths[-1]
        interval = paired_interval(gap(small), gap(large))
        setting = describe(next(iter(g.values()))[0], ("learn", "width"))
        quantity = f"gap at width {small} − gap at width {large}"
        verdicts.append(claim.compare(setting, quantity, interval, Region(low=0.0)))
    claim.verdict = all_of(verdicts)
    return claim


def _bits(row: dict[str, Any]) -> list[bool] | None:
    """Per-image robust correctness of an attack row (``robust_correct``), if it was recorded."""
    text, n = row.get("robust_correct"), row.get("n")
    return hex_to_bits(text, n) if isinstance(text, str) and isinstance(n, int) else None


def _sample_var(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Variance of a − b robust accuracy from the test-image sample: exact when both rows carry per-image
    results on the same sample, else the conservative unpaired bound."""
    bits_a, bits_b = _bits(a), _bits(b)
    same_sample = a.get("n") == b.get("n") and a.get("seed") == b.get("seed")
    if bits_a is not None and bits_b is not None and same_sample:
        return paired_binomial_var(bits_a, bits_b)
    return unpaired_binomial_var(float(a["robust_acc"]), float(b["robust_acc"]), int(a.get("n") or 1))


def _robust_interval(
    a_runs: list[Run], b_runs: list[Run], attack: str, eps: float
) -> tuple[Interval | None, bool]:
    a, b = rows_by_seed(a_runs, attack, eps), rows_by_seed(b_runs, attack, eps)
    seeds = set(a) & set(b)
    interval = paired_interval(
        {s: float(a[s]["robust_acc"]) for s in seeds},
        {s: float(b[s]["robust_acc"]) for s in seeds},
        {s: _sample_var(a[s], b[s]) for s in seeds},
    )
    flagged = any(a[s].get("flags") or b[s].get("flags") for s in seeds)
    return interval, flagged


def _robust_pairs(claim: Claim, runs: list[Run], adv: str, region: Region) -> Claim:
    verdicts = []
    for g in groups(runs, ("learn",), lambda r: _classify(r) and r.config.adv == adv and r.attacks != []):
        if ("full",) not in g or ("chans",) not in g:
            continue
        setting = describe(g[("full",)][0], ("learn",))
        for attack, eps in attack_points(
            g[("full",)] + g[("chans",)], GRADIENT_ATTACKS, pgd_steps=2
        ):  # FGSM, PGD-2
            interval, flagged = _robust_interval(g[("chans",)], g[("full",)], attack, eps)
            claim.flagged |= flagged
            quantity = f"{attack} ε={eps * 255:g}/255: chans − full robust accuracy"
            verdicts.append(claim.compare(setting, quantity, interval, region))
    claim.verdict = all_of(verdicts)
    return claim


def chans_more_robust(runs: list[Run]) -> Claim:
    claim = Claim(
        5,
        "chans is more robust than full to FGSM and PGD-2 without adversarial training",
        "no adversarial training, every setting and every ε attacked: chans − full robust accuracy > 0 for "
        "FGSM and for PGD-2 (each PGD named with its step size and start)",
    )
    return _robust_pairs(claim, runs, "none", Region(low=0.0))


def gap_closes_under_fgsm(runs: list[Run], max_gap: float = 2.0) -> Claim:
    claim = Claim(
        6,
        "the robustness gap closes under FGSM training",
        f"FGSM-trained settings, every ε attacked: chans − full robust accuracy in [−{max_gap:g}, {max_gap:g}] "
        f"points for FGSM and PGD-2",
    )
    return _robust_pairs(claim, runs, "fgsm", Region(low=-max_gap / PTS, high=max_gap / PTS))


def _mean_robust_interval(
    a_runs: list[Run], b_runs: list[Run], points: list[tuple[str, float]]
) -> tuple[Interval | None, bool]:
    """a − b of the mean robust accuracy over ``points`` (the same points for both), per seed; the image
    error of a mean of correlated points is at most the mean of their standard errors."""
    per_a = [rows_by_seed(a_runs, *p) for p in points]
    per_b = [rows_by_seed(b_runs, *p) for p in points]
    seeds = set.intersection(*(set(x) for x in per_a + per_b)) if points else set()
    mean_a = {s: statistics.fmean(float(x[s]["robust_acc"]) for x in per_a) for s in seeds}
    mean_b = {s: statistics.fmean(float(x[s]["robust_acc"]) for x in per_b) for s in seeds}
    var = {
        s: statistics.fmean(_sample_var(x[s], y[s]) ** 0.5 for x, y in zip(per_a, per_b, strict=True)) ** 2
        for s in seeds
    }
    flagged = any(x[s].get("flags") for x in per_a + per_b for s in seeds)
    return paired_interval(mean_a, mean_b, var), flagged


def smoothing_helps(runs: list[Run], max_clean_drop: float = 1.0) -> Claim:
    claim = Claim(
        7,
        "smoothing the frozen random filters raises robust accuracy without lowering clean accuracy",
        "chans runs differing only in the bank, for some smooth σ: smooth − random robust accuracy (mean over "
        f"the FGSM / PGD points attacked) > 0 and smooth − random clean test accuracy > −{max_clean_drop:g} "
        f"point",
    )
    per_setting = []
    where = lambda r: _clean(r) and r.config.learn == "chans" and r.attacks != []  # noqa: E731
    for g in groups(runs, ("filters",), where):
        base = [rs for (f,), rs in g.items() if f == "random"]
        banks = {f: parse_bank(f) for (f,) in g}
        smooth = {banks[f].params["sigma"]: rs for (f,), rs in g.items() if banks[f].name == "smooth"}
        if not base or not smooth:
            continue
        random_runs = base[0]
        setting = describe(random_runs[0], ("filters",))
        points = attack_points(random_runs, GRADIENT_ATTACKS)
        per_sigma = []
        for sigma, rs in sorted(smooth.items()):
            robust, flagged = _mean_robust_interval(rs, random_runs, points)
            claim.flagged |= flagged
            clean = paired_interval(metric_by_seed(rs), metric_by_seed(random_runs))
            names = ", ".join(sorted({a for a, _ in points}))
            v_robust = claim.compare(
                setting,
                f"σ={sigma:g}: smooth − random robust accuracy over {len(points)} points ({names})",
                robust,
                Region(low=0.0),
            )
            v_clean = claim.compare(
                setting,
                f"σ={sigma:g}: smooth − random clean accuracy",
                clean,
                Region(low=-max_clean_drop / PTS),
            )
            per_sigma.append(all_of([v_robust, v_clean]))
        per_setting.append(any_of(per_sigma))
    claim.verdict = all_of(per_setting)
    return claim


def chans_unshuffles(runs: list[Run], max_gap: float = 2.0) -> Claim:
    claim = Claim(
        8,
        "chans un-shuffles nearly as well as full",
        f"un-shuffle settings run with both: full − chans test PSNR ≤ {max_gap:g} dB",
    )
    unshuffle = lambda r: r.config.task == "unshuffle"  # noqa: E731
    claim.verdict = all_of(_pair(claim, runs, "learn", "full", "chans", Region(high=max_gap), unshuffle))
    return claim


def gap_recovered_by_seed(head: list[Run], chans: list[Run], full: list[Run]) -> dict[int, float]:
    """``(chans − head) / (full − head)`` of each seed that all three have: the share of the accuracy that
    training everything adds to a trained head alone which learning the channel mixing recovers. A seed
    whose full run is no better than its head gives no share (a ratio over no gap means nothing)."""
    h, c, f = metric_by_seed(head), metric_by_seed(chans), metric_by_seed(full)
    return {s: (c[s] - h[s]) / (f[s] - h[s]) for s in sorted(set(h) & set(c) & set(f)) if f[s] > h[s]}


def chans_recovers_the_gap(runs: list[Run], min_share: float = 0.75) -> Claim:
    claim = Claim(
        10,
        "beyond the paper: chans recovers most of what training everything adds to the head alone",
        f"every setting run with head, chans and full: (chans − head) / (full − head) test accuracy, per "
        f"seed, > {min_share:g}; 95% CI: t over the seeds' shares",
    )
    verdicts = []
    for g in groups(runs, ("learn",), _clean):
        if all((m,) in g for m in ("head", "chans", "full")):
            shares = gap_recovered_by_seed(g[("head",)], g[("chans",)], g[("full",)])
            interval = paired_interval(shares, dict.fromkeys(shares, 0.0))
            setting = describe(g[("chans",)][0], ("learn",))
            quantity = "(chans − head) / (full − head)"
            verdicts.append(claim.compare(setting, quantity, interval, Region(low=min_share), 1.0, "", 2))
    claim.verdict = all_of(verdicts)
    return claim


def chans_beats_norm(runs: list[Run]) -> Claim:
    claim = Claim(
        11,
        "beyond the paper: learning the channel mixing beats learning only the norms (and head)",
        "every setting run with both: chans − norm test accuracy > 0 points",
    )
    claim.verdict = all_of(_pair(claim, runs, "learn", "chans", "norm", Region(low=0.0), _clean))
    return claim


CoverageDraws = dict[int, list[float]]  # N -> coverage of independent banks of N filters


def coverage_grows(fresh: CoverageDraws, own: dict[str, CoverageDraws] | None = None) -> Claim:
    claim = Claim(
        9,
        "random-bank spectral coverage grows with the number of filters",
        f"coverage (pad 512: the share of frequencies where some filter, scaled to unit energy, reaches "
        f"|H| ≥ {DEFAULT_LEVEL:g} × a flat spectrum's) of N + 1-th size − N-th size > 0 for N = 1, 4, 16, "
        "64, from fresh random banks (independent draws per N) and from the frozen random banks of your "
        "chans runs, rebuilt from their configs (disjoint filter subsets); 95% CI by Welch's t over banks",
    )
    verdicts = []
    sources = {"fresh banks (kernel 5)": fresh, **(own or {})}
    for source, draws in sources.items():
        ns = sorted(n for n in draws if draws[n])
        for a, b in zip(ns, ns[1:], strict=False):
            interval = welch_interval(draws[b], draws[a], "banks")
            quantity = f"coverage N={b} − N={a}"
            verdicts.append(claim.compare(source, quantity, interval, Region(low=0.0), 1.0, "", digits=3))
    claim.verdict = all_of(verdicts)
    return claim


def all_claims(
    runs: list[Run], fresh: CoverageDraws, own: dict[str, CoverageDraws] | None = None
) -> list[Claim]:
    return [
        chans_near_full(runs),
        space_far_below(runs),
        filter_order(runs),
        gap_shrinks_with_width(runs),
        chans_more_robust(runs),
        gap_closes_under_fgsm(runs),
        smoothing_helps(runs),
        chans_unshuffles(runs),
        coverage_grows(fresh, own),
        chans_recovers_the_gap(runs),
        chans_beats_norm(runs),
    ]


__all__ = ["CI_RULE", "Claim", "Comparison", "all_claims"]
