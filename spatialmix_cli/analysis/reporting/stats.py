"""Paired differences with 95 % confidence intervals, and three-way verdicts on them.

A claim compares runs that differ only in what it varies and share a seed (the same init stream, the same
data order): the per-seed differences are paired. Their mean gets a Student-t interval over seeds; for
attack results, which are measured on one fixed sample of test images shared by every run, the sampling
error of those images is added on top (it does not shrink with more seeds). A verdict is **holds** when the
whole interval lies inside the claim's region, **does not hold** when it lies wholly outside, and
**inconclusive** otherwise; fewer than two paired seeds give no interval (``not enough runs``). An
inconclusive comparison also says how many seeds (banks, for Welch's interval) would decide it at the same
mean and spread (:func:`samples_to_decide`, :meth:`Region.to_decide`). The t and normal quantiles are
scipy's.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats as distributions

HOLDS, FAILS, INCONCLUSIVE, UNKNOWN = "holds", "does not hold", "inconclusive", "not enough runs"
Z975 = float(distributions.norm.ppf(0.975))


def t975(df: float) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (fractional for Welch's)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(distributions.t.ppf(0.975, df))


@dataclass(frozen=True)
class Interval:
    """Mean of paired differences with a 95 % interval. ``seeds``: paired seeds behind it; ``sd``: the
    std of the per-seed differences (for Welch's interval, √(s_a² + s_b²): the spread of one a − b pair of
    draws, so that n draws a side give a standard error of sd/√n, as n paired seeds do); ``sample_se``: the
    test-image sampling error added (0 if none)."""

    mean: float
    low: float
    high: float
    seeds: int
    sd: float
    sample_se: float = 0.0
    samples: str = "seeds"  # what the n counts: paired seeds, or independent banks for Welch's interval

    def fmt(self, scale: float = 1.0, unit: str = "", digits: int = 1) -> str:
        """``+1.2 [95% CI -0.3, +2.7] (n=3 seeds)`` (and the test-image error, where one was added)."""

        def f(x: float) -> str:
            return f"{x * scale:+.{digits}f}"

        extra = f", test-image s.e. {self.sample_se * scale:.{digits}f}" if self.sample_se else ""
        return f"{f(self.mean)}{unit} [95% CI {f(self.low)}, {f(self.high)}] (n={self.seeds} {self.samples}{extra})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_interval(
    a: Mapping[int, float], b: Mapping[int, float], sample_var: Mapping[int, float] | None = None
) -> Interval | None:
    """Interval for the mean of ``a[s] - b[s]`` over the seeds ``s`` both have (None under two).

    ``sample_var[s]``: the variance of that seed's difference due to the fixed test-image sample; since
    every seed uses the same images, its mean over seeds is added to the interval as a separate, shared
    error term: half-width = √((t·sd/√n)² + (1.96·se_img)²)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    sample_se = 0.0
    if sample_var:
        sample_se = math.sqrt(statistics.fmean(sample_var.get(s, 0.0) for s in seeds))
    half = math.hypot(t975(len(seeds) - 1) * sd / math.sqrt(len(seeds)), Z975 * sample_se)
    return Interval(mean, mean - half, mean + half, len(seeds), sd, sample_se)


def welch_interval(a: Sequence[float], b: Sequence[float], samples: str = "draws") -> Interval | None:
    """Interval for mean(a) − mean(b) of two independent samples (Welch's t, with the Welch–Satterthwaite
    degrees of freedom as they are, fractional), None if either has < 2; ``n`` is the smaller sample's size
    and ``sd`` √(s_a² + s_b²)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    mean = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(mean, mean, mean, min(len(a), len(b)), 0.0, samples=samples)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t975(df) * se
    sd = math.sqrt(statistics.variance(a) + statistics.variance(b))
    return Interval(mean, mean - half, mean + half, min(len(a), len(b)), sd, samples=samples)


@dataclass(frozen=True)
class ToDecide:
    """How many samples would decide an inconclusive comparison at the observed mean and spread: ``n``
    (None: no number would, ``why`` says why), counted in ``unit`` (the interval's: seeds, banks)."""

    n: int | None
    unit: str
    why: str = ""

    def text(self) -> str:
        """``≈ 18 seeds would decide it`` or ``no number of seeds would decide it (why)``."""
        if self.n is None:
            return f"no number of {self.unit} would decide it ({self.why})"
        return f"≈ {self.n} {self.unit} would decide it"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}


def samples_to_decide(distance: float, sd: float, floor: float = 0.0) -> int | None:
    """The smallest n ≥ 2 with √((t_{0.975, n−1}·sd/√n)² + (1.96·floor)²) < ``distance``: the half-width
    of a 95 % interval over n samples whose differences spread by ``sd``, plus a fixed error ``floor`` that
    more samples do not shrink (the attacked test images'). None when no n does: ``distance`` 0, or the
    floor alone reaches it. The half-width falls with n, so a doubling then bisection finds it."""
    if distance <= 0 or Z975 * floor >= distance:
        return None

    def decides(n: int) -> bool:
        return math.hypot(t975(n - 1) * sd / math.sqrt(n), Z975 * floor) < distance

    low, high = 1, 2  # decides(low) is false (n = 1 has no interval); find a high that decides
    while not decides(high):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if decides(mid) else (mid, high)
    return high


def paired_binomial_var(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Variance of the difference of two accuracies measured on the same ``n`` images, from per-image
    correctness (McNemar's pairing): (n10 + n01 − (n10 − n01)²/n) / n²."""
    if len(a) != len(b) or not a:
        raise ValueError("need two equal, non-empty lists of per-image results")
    n = len(a)
    n10 = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    n01 = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return max(n10 + n01 - (n10 - n01) ** 2 / n, 0.0) / n**2


def unpaired_binomial_var(p: float, q: float, n: int) -> float:
    """Upper bound on that variance from the two accuracies alone (ignores their positive correlation)."""
    return (p * (1 - p) + q * (1 - q)) / max(n, 1)


@dataclass(frozen=True)
class Region:
    """Where the claim puts the compared quantity: ``low < x`` and/or ``x <= high`` (None: unbounded)."""

    low: float | None = None
    high: float | None = None

    def describe(self, scale: float = 1.0, unit: str = "") -> str:
        lo = None if self.low is None else f"{self.low * scale:g}"
        hi = None if self.high is None else f"{self.high * scale:g}"
        if lo is not None and hi is not None:
            return f"in [{lo}, {hi}]{unit}"
        return f"> {lo}{unit}" if lo is not None else f"≤ {hi}{unit}"

    def verdict(self, interval: Interval | None) -> str:
        if interval is None:
            return UNKNOWN
        inside = (self.low is None or interval.low > self.low) and (
            self.high is None or interval.high <= self.high
        )
        outside = (self.low is not None and interval.high <= self.low) or (
            self.high is not None and interval.low > self.high
        )
        return HOLDS if inside else FAILS if outside else INCONCLUSIVE

    def to_decide(self, interval: Interval | None) -> ToDecide | None:
        """For an inconclusive ``interval`` only: how many samples (its unit) would put it wholly on one
        side of the nearest boundary, inside or outside the region, at the same mean, spread and test-image
        error (:func:`samples_to_decide`); None for any other verdict."""
        if interval is None or self.verdict(interval) != INCONCLUSIVE:
            return None
        bounds = [b for b in (self.low, self.high) if b is not None]
        distance = min(abs(interval.mean - b) for b in bounds)
        if distance <= 1e-12 * max(1.0, *(abs(b) for b in bounds)):
            return ToDecide(None, interval.samples, "the mean difference sits on the boundary")
        n = samples_to_decide(distance, interval.sd, interval.sample_se)
        if n is None:
            why = "the test-image error alone spans the distance to the boundary; more test images would"
            return ToDecide(None, interval.samples, why)
        return ToDecide(n, interval.samples)


def all_of(verdicts: Iterable[str]) -> str:
    """A claim that must hold in every comparison: one failure fails it, any doubt leaves it open."""
    found = [v for v in verdicts if v != UNKNOWN]
    if not found:
        return UNKNOWN
    if FAILS in found:
        return FAILS
    return HOLDS if all(v == HOLDS for v in found) else INCONCLUSIVE


def any_of(verdicts: Iterable[str]) -> str:
    """A claim that needs one comparison to hold (e.g. *some* smoothing σ)."""
    found = [v for v in verdicts if v != UNKNOWN]
    if not found:
        return UNKNOWN
    if HOLDS in found:
        return HOLDS
    return FAILS if all(v == FAILS for v in found) else INCONCLUSIVE
