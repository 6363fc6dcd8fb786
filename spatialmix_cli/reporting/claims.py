"""The paper's claims, each with a verdict from the user's runs and the numbers that decided it.

Verdicts: ``holds`` / ``does not hold`` / ``not enough runs``. Every threshold is stated in the claim's
``rule`` so the report says exactly what was checked. A claim resting on attack results that failed a
gradient-masking check is marked ``flagged``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .collect import Run
from .compare import Stat, describe, groups, metric_stat, robust_stat

HOLDS, FAILS, UNKNOWN = "holds", "does not hold", "not enough runs"
EPS = 1 / 255


@dataclass
class Claim:
    id: int
    text: str
    rule: str  # the test applied, thresholds included
    verdict: str = UNKNOWN
    evidence: list[str] = field(default_factory=list)  # one line per comparison that decided it
    flagged: bool = False  # some attack result behind it failed a masking check

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verdict(claim: Claim, passes: list[bool]) -> Claim:
    claim.verdict = UNKNOWN if not passes else (HOLDS if all(passes) else FAILS)
    return claim


def _classify(run: Run) -> bool:
    return run.config.task == "classify"


def _pts(stat: Stat) -> str:
    return stat.fmt(100, 1, "%")


def chans_near_full(runs: list[Run], max_gap: float = 3.0) -> Claim:
    claim = Claim(1, "chans is within a few points of full at every depth",
                  f"for every setting run with both: full − chans test accuracy ≤ {max_gap:g} points")  # fmt: skip
    passes = []
    for g in groups(runs, ("learn",), lambda r: _classify(r) and r.config.adv == "none"):
        if ("full",) in g and ("chans",) in g:
            full, chans = metric_stat(g[("full",)]), metric_stat(g[("chans",)])
            gap = 100 * (full.mean - chans.mean)
            passes.append(gap <= max_gap)
            claim.evidence.append(
                f"{describe(g[('full',)][0], ('learn',))}: full {_pts(full)}, chans {_pts(chans)}, gap {gap:+.1f}"
            )
    return _verdict(claim, passes)


def space_far_below(runs: list[Run], min_gap: float = 5.0) -> Claim:
    claim = Claim(2, "space is far below chans",
                  f"for every setting run with both: chans − space test accuracy ≥ {min_gap:g} points")  # fmt: skip
    passes = []
    for g in groups(runs, ("learn",), lambda r: _classify(r) and r.config.adv == "none"):
        if ("space",) in g and ("chans",) in g:
            chans, space = metric_stat(g[("chans",)]), metric_stat(g[("space",)])
            gap = 100 * (chans.mean - space.mean)
            passes.append(gap >= min_gap)
            claim.evidence.append(
                f"{describe(g[('chans',)][0], ('learn',))}: chans {_pts(chans)}, space {_pts(space)}, gap {gap:+.1f}"
            )
    return _verdict(claim, passes)


def filter_order(runs: list[Run]) -> Claim:
    order = ("random", "same", "box", "identity")
    claim = Claim(3, "random frozen filters beat same > box > identity",
                  "chans runs differing only in the frozen bank: mean accuracy strictly random > same > box > identity")  # fmt: skip
    passes = []
    for g in groups(
        runs, ("filters",), lambda r: _classify(r) and r.config.learn == "chans" and r.config.adv == "none"
    ):
        if all((f,) in g for f in order):
            stats = [metric_stat(g[(f,)]) for f in order]
            passes.append(all(a.mean > b.mean for a, b in zip(stats, stats[1:], strict=False)))
            cells = ", ".join(f"{f} {_pts(s)}" for f, s in zip(order, stats, strict=True))
            claim.evidence.append(f"{describe(g[('random',)][0], ('filters',))}: {cells}")
    return _verdict(claim, passes)


def gap_shrinks_with_width(runs: list[Run]) -> Claim:
    claim = Claim(4, "the chans–full gap shrinks as width grows",
                  "settings run with full and chans at two or more widths: gap at the largest width < gap at the smallest")  # fmt: skip
    passes = []
    for g in groups(runs, ("learn", "width"), lambda r: _classify(r) and r.config.adv == "none"):
        widths = sorted(
            {w for (learn, w) in g if (("full", w) in g and ("chans", w) in g)}, key=lambda w: w or 0
        )
        if len(widths) < 2:
            continue
        gaps = {
            w: 100 * (metric_stat(g[("full", w)]).mean - metric_stat(g[("chans", w)]).mean) for w in widths
        }
        passes.append(gaps[widths[-1]] < gaps[widths[0]])
        any_run = next(iter(g.values()))[0]
        cells = ", ".join(f"width {w}: {gaps[w]:+.1f}" for w in widths)
        claim.evidence.append(f"{describe(any_run, ('learn', 'width'))}: full − chans {cells}")
    return _verdict(claim, passes)


def _robust_pairs(claim: Claim, runs: list[Run], adv: str, test) -> Claim:  # noqa: ANN001
    passes = []
    for g in groups(runs, ("learn",), lambda r: _classify(r) and r.config.adv == adv and r.attacks != []):
        if ("full",) not in g or ("chans",) not in g:
            continue
        for method, steps, label in (("fgsm", None, "FGSM"), ("pgd", 2, "PGD-2")):
            full, flag_f = robust_stat(g[("full",)], method, EPS, steps)
            chans, flag_c = robust_stat(g[("chans",)], method, EPS, steps)
            if full.n == 0 or chans.n == 0:
                continue
            claim.flagged |= flag_f or flag_c
            diff = 100 * (chans.mean - full.mean)
            passes.append(test(diff))
            claim.evidence.append(
                f"{describe(g[('full',)][0], ('learn',))} {label} ε=1/255: chans {_pts(chans)}, full {_pts(full)}, "
                f"chans − full {diff:+.1f}"
            )
    return _verdict(claim, passes)


def chans_more_robust(runs: list[Run]) -> Claim:
    claim = Claim(5, "chans is more robust than full to FGSM and PGD-2 at ε = 1/255 without adversarial training",
                  "robust accuracy of chans > full for FGSM and for PGD-2 at ε = 1/255 in every setting (no adversarial training)")  # fmt: skip
    return _robust_pairs(claim, runs, "none", lambda d: d > 0)


def gap_closes_under_fgsm(runs: list[Run], max_gap: float = 2.0) -> Claim:
    claim = Claim(6, "the robustness gap closes under FGSM training",
                  f"FGSM-trained settings: |chans − full| robust accuracy ≤ {max_gap:g} points for FGSM and PGD-2 at ε = 1/255")  # fmt: skip
    return _robust_pairs(claim, runs, "fgsm", lambda d: abs(d) <= max_gap)


def _mean_robust(runs: list[Run], points: list[tuple[str, int | None, float]]) -> tuple[float, bool]:
    """Mean robust accuracy over attack points (method, steps, ε), and whether any result is flagged."""
    stats = [robust_stat(runs, m, e, st) for m, st, e in points]
    ok = [s for s, _ in stats if s.n]
    return (sum(s.mean for s in ok) / len(ok) if ok else float("nan")), any(f for _, f in stats)


def smoothing_helps(runs: list[Run], min_gain: float = 1.0, max_clean_drop: float = 1.0) -> Claim:
    claim = Claim(7, "smoothing the frozen random filters raises robust accuracy without lowering clean accuracy",
                  f"chans runs differing only in the bank: some smooth σ has mean robust accuracy (over its attacks) ≥ random + "
                  f"{min_gain:g} point and clean accuracy ≥ random − {max_clean_drop:g} point")  # fmt: skip
    passes = []
    for g in groups(runs, ("filters", "smooth_sigma"),
                    lambda r: _classify(r) and r.config.learn == "chans" and r.config.adv == "none" and r.attacks != []):  # fmt: skip
        base = [runs_ for (f, _s), runs_ in g.items() if f == "random"]
        smooth = {s: runs_ for (f, s), runs_ in g.items() if f == "smooth"}
        if not base or not smooth:
            continue
        random_runs = base[0]
        points = sorted(
            {
                (a["method"], a.get("steps"), float(a["eps"]))
                for r in random_runs
                for a in r.attacks
                if a["eps"] > 0
            }
        )

        rand_robust, flag = _mean_robust(random_runs, points)
        claim.flagged |= flag
        rand_clean = metric_stat(random_runs).mean
        best = False
        cells = []
        for sigma, rs in sorted(smooth.items()):
            robust, flag = _mean_robust(rs, points)
            claim.flagged |= flag
            gain, drop = 100 * (robust - rand_robust), 100 * (rand_clean - metric_stat(rs).mean)
            best |= gain >= min_gain and drop <= max_clean_drop
            cells.append(f"σ={sigma:g}: robust {gain:+.1f}, clean {-drop:+.1f}")
        passes.append(best)
        claim.evidence.append(
            f"{describe(random_runs[0], ('filters',))} vs random ({len(points)} attack points): "
            + "; ".join(cells)
        )
    return _verdict(claim, passes)


def chans_unshuffles(runs: list[Run], max_gap: float = 2.0) -> Claim:
    claim = Claim(8, "chans un-shuffles nearly as well as full",
                  f"un-shuffle settings run with both: full − chans test PSNR ≤ {max_gap:g} dB")  # fmt: skip
    passes = []
    for g in groups(runs, ("learn",), lambda r: r.config.task == "unshuffle"):
        if ("full",) in g and ("chans",) in g:
            full, chans = metric_stat(g[("full",)]), metric_stat(g[("chans",)])
            gap = full.mean - chans.mean
            passes.append(gap <= max_gap)
            claim.evidence.append(
                f"{describe(g[('full',)][0], ('learn',))}: full {full.fmt(unit=' dB')}, chans {chans.fmt(unit=' dB')}, gap {gap:+.1f} dB"
            )
    return _verdict(claim, passes)


def coverage_grows(coverage: dict[int, Stat]) -> Claim:
    claim = Claim(9, "random-bank spectral coverage grows with the number of filters",
                  "fresh random banks (kernel 5, pad 512, threshold 0.5): mean coverage strictly increases over N = 1, 4, 16, 64")  # fmt: skip
    ns = sorted(coverage)
    if len(ns) >= 2:
        claim.evidence.append(", ".join(f"N={n}: {coverage[n].fmt(digits=3)}" for n in ns))
        return _verdict(
            claim, [coverage[a].mean < coverage[b].mean for a, b in zip(ns, ns[1:], strict=False)]
        )
    return claim


def all_claims(runs: list[Run], coverage: dict[int, Stat]) -> list[Claim]:
    return [
        chans_near_full(runs),
        space_far_below(runs),
        filter_order(runs),
        gap_shrinks_with_width(runs),
        chans_more_robust(runs),
        gap_closes_under_fgsm(runs),
        smoothing_helps(runs),
        chans_unshuffles(runs),
        coverage_grows(coverage),
    ]
