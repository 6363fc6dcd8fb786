"""The intervals and verdicts behind every claim: checked against hand computations and simulation."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from spatialmix_cli.analysis.reporting.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNKNOWN,
    Z975,
    Interval,
    Region,
    ToDecide,
    all_of,
    any_of,
    paired_binomial_var,
    paired_interval,
    samples_to_decide,
    t975,
    unpaired_binomial_var,
    welch_interval,
)


def test_t_quantiles_are_scipys_to_the_last_digit_and_approach_the_normal() -> None:
    from scipy import stats as distributions

    for df in (1, 2, 3, 10, 30, 31, 40, 120, 1000):
        assert t975(df) == float(distributions.t.ppf(0.975, df))  # exact: a hand table is rounded
    assert t975(1) == pytest.approx(12.706, abs=1e-3)  # the published table
    assert t975(2) == pytest.approx(4.303, abs=1e-3)
    assert t975(10) == pytest.approx(2.228, abs=1e-3)
    assert t975(40) == pytest.approx(2.021, abs=1e-3)
    assert t975(120) == pytest.approx(1.980, abs=1e-3)
    assert all(t975(d) > t975(d + 1) for d in range(1, 200))
    assert t975(10**6) == pytest.approx(Z975, abs=1e-5)
    with pytest.raises(ValueError):
        t975(0)


def test_paired_interval_is_the_t_interval_of_the_per_seed_differences() -> None:
    a, b = {0: 0.80, 1: 0.84, 2: 0.79, 7: 0.5}, {0: 0.78, 1: 0.80, 2: 0.78, 9: 0.1}  # seeds 7, 9 unpaired
    got = paired_interval(a, b)
    diffs = [0.02, 0.04, 0.01]
    half = 4.302653 * statistics.stdev(diffs) / math.sqrt(3)
    assert got.seeds == 3 and got.mean == pytest.approx(statistics.fmean(diffs))
    assert (got.low, got.high) == pytest.approx((got.mean - half, got.mean + half))
    assert paired_interval({0: 1.0}, {0: 0.0}) is None  # one paired seed: no interval


def test_the_shared_image_error_is_added_and_does_not_shrink_with_seeds() -> None:
    a = {s: 0.6 for s in range(10)}
    b = {s: 0.5 for s in range(10)}
    var = {s: 0.0004 for s in range(10)}  # s.e. 2 points from the test images
    got = paired_interval(a, b, var)
    assert got.sd == 0 and got.sample_se == pytest.approx(0.02)
    assert got.high - got.mean == pytest.approx(1.96 * 0.02, abs=1e-4)


def test_paired_binomial_variance_matches_brute_force_and_is_below_the_unpaired_bound() -> None:
    rng = random.Random(0)
    a = [rng.random() < 0.7 for _ in range(400)]
    b = [x if rng.random() < 0.8 else not x for x in a]  # correlated with a, as two models on one sample
    n = len(a)
    d = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    brute = statistics.pvariance(d) / n  # variance of the mean difference over images
    assert paired_binomial_var(a, b) == pytest.approx(brute)
    pa, pb = sum(a) / n, sum(b) / n
    assert paired_binomial_var(a, b) < unpaired_binomial_var(pa, pb, n)
    assert paired_binomial_var(a, a) == 0
    with pytest.raises(ValueError):
        paired_binomial_var(a, b[:-1])


def test_paired_intervals_cover_the_true_difference_95_percent_of_the_time() -> None:
    """Simulated seeds: 3 paired runs with noise; the interval must cover the true gap ~95 % of the time."""
    rng = random.Random(1)
    covered = 0
    trials = 2000
    for _ in range(trials):
        seed_effect = [rng.gauss(0, 0.02) for _ in range(3)]
        a = {s: 0.80 + e + rng.gauss(0, 0.005) for s, e in enumerate(seed_effect)}
        b = {s: 0.78 + e + rng.gauss(0, 0.005) for s, e in enumerate(seed_effect)}
        iv = paired_interval(a, b)
        covered += iv.low <= 0.02 <= iv.high
    assert 0.93 < covered / trials < 0.97


def test_welch_interval_for_independent_samples() -> None:
    a, b = [0.62, 0.65, 0.60, 0.66], [0.30, 0.34, 0.28]
    got = welch_interval(a, b)
    assert got.mean == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
    assert got.low > 0.2 and got.high < 0.45
    assert welch_interval([0.1], b) is None
    # sd is the spread of one a − b pair of draws, √(s_a² + s_b²): n draws a side give s.e. sd/√n
    assert got.sd == pytest.approx(math.sqrt(statistics.variance(a) + statistics.variance(b)))
    same = welch_interval(a[:3], b)
    t = (same.high - same.mean) / (same.sd / math.sqrt(3))  # 3 a side: half-width t·sd/√3
    assert t == pytest.approx(t975(_satterthwaite(a[:3], b)), rel=1e-12)


def _satterthwaite(a: list[float], b: list[float]) -> float:
    """Welch–Satterthwaite degrees of freedom, by hand."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    return (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))


def test_welch_interval_uses_the_fractional_degrees_of_freedom() -> None:
    """Welch's t quantile at the Welch–Satterthwaite df as it is (4.15 here), not floored to 4: the interval
    is scipy's ``ttest_ind(equal_var=False)`` one, and narrower than the floored df would give."""
    from scipy import stats as distributions

    a, b = [0.62, 0.65, 0.60, 0.66], [0.30, 0.34, 0.28]
    df = _satterthwaite(a, b)
    assert 4 < df < 5 and df != math.floor(df)
    got = welch_interval(a, b)
    se = math.sqrt(statistics.variance(a) / 4 + statistics.variance(b) / 3)
    assert got.high - got.mean == pytest.approx(float(distributions.t.ppf(0.975, df)) * se, rel=1e-12)
    assert got.high - got.mean < t975(4) * se  # the floored df's wider interval
    result = distributions.ttest_ind(a, b, equal_var=False)
    if hasattr(result, "confidence_interval"):  # scipy >= 1.11
        ci = result.confidence_interval(0.95)
        assert (got.low, got.high) == pytest.approx((float(ci.low), float(ci.high)), rel=1e-12)


def test_region_verdicts_are_three_way() -> None:
    above0, at_most3, band = Region(low=0.0), Region(high=0.03), Region(low=-0.02, high=0.02)
    iv = lambda lo, hi: Interval((lo + hi) / 2, lo, hi, 3, 0.0)  # noqa: E731
    assert above0.verdict(iv(0.01, 0.05)) == HOLDS
    assert above0.verdict(iv(-0.05, -0.01)) == FAILS
    assert above0.verdict(iv(-0.01, 0.02)) == INCONCLUSIVE
    assert at_most3.verdict(iv(0.0, 0.029)) == HOLDS and at_most3.verdict(iv(0.031, 0.05)) == FAILS
    assert band.verdict(iv(-0.01, 0.01)) == HOLDS and band.verdict(iv(0.03, 0.05)) == FAILS
    assert band.verdict(iv(0.0, 0.03)) == INCONCLUSIVE
    assert above0.verdict(None) == UNKNOWN
    assert above0.describe(100, " points") == "> 0 points" and band.describe(100, "") == "in [-2, 2]"


def test_combining_verdicts() -> None:
    for combo in itertools.product((HOLDS, FAILS, INCONCLUSIVE, UNKNOWN), repeat=2):
        every, some = all_of(combo), any_of(combo)
        assert (every == FAILS) == (FAILS in combo)
        assert (some == HOLDS) == (HOLDS in combo)
    assert all_of([HOLDS, UNKNOWN]) == HOLDS and all_of([UNKNOWN]) == UNKNOWN
    assert all_of([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE and any_of([FAILS, INCONCLUSIVE]) == INCONCLUSIVE


# --- how many seeds would decide an inconclusive comparison --------------------------------------------
def test_samples_to_decide_matches_a_hand_computation_from_the_t_table() -> None:
    """d̄ − boundary = 1, s = 2: t_{n−1}·2/√n < 1 first at n = 18 (t_16 = 2.1199: 2·2.1199/√17 = 1.028;
    t_17 = 2.1098: 2·2.1098/√18 = 0.995). With a test-image error 0.3 on top: (t·2/√n)² + (1.96·0.3)² < 1,
    i.e. t/√n < 0.4044, first at n = 26 (t_24/5 = 0.4128; t_25/√26 = 0.4039)."""
    assert samples_to_decide(1.0, 2.0) == 18
    assert samples_to_decide(1.0, 2.0, floor=0.3) == 26
    assert samples_to_decide(1.0, 0.0) == 2  # no spread: the first interval decides
    assert samples_to_decide(0.0, 2.0) is None  # on the boundary: no number does
    assert samples_to_decide(1.0, 0.1, floor=0.6) is None  # 1.96 · 0.6 > 1: the images' error alone


def test_samples_to_decide_is_the_first_n_that_decides_and_moves_the_right_way() -> None:
    def brute(distance: float, sd: float) -> int:
        return next(n for n in itertools.count(2) if t975(n - 1) * sd / math.sqrt(n) < distance)

    for distance, sd in ((0.5, 1.0), (0.1, 1.0), (0.013, 0.05), (2.0, 1.0)):  # past the table (n > 31) too
        assert samples_to_decide(distance, sd) == brute(distance, sd)
    by_distance = [samples_to_decide(d, 1.0) for d in (0.05, 0.1, 0.2, 0.5, 1.0, 3.0)]
    by_spread = [samples_to_decide(0.1, s) for s in (0.01, 0.05, 0.1, 0.3, 1.0)]
    by_floor = [samples_to_decide(0.1, 0.1, f) for f in (0.0, 0.01, 0.03, 0.05)]
    assert by_distance == sorted(by_distance, reverse=True) and by_distance[0] > by_distance[-1]
    assert by_spread == sorted(by_spread) and by_spread[0] < by_spread[-1]
    assert by_floor == sorted(by_floor) and by_floor[0] < by_floor[-1]


def test_only_an_inconclusive_comparison_says_what_would_decide_it() -> None:
    above0, band = Region(low=0.0), Region(low=-0.02, high=0.02)
    noisy = Interval(0.01, -0.02, 0.04, 3, 0.02)
    assert above0.verdict(noisy) == INCONCLUSIVE
    assert above0.to_decide(noisy) == ToDecide(samples_to_decide(0.01, 0.02), "seeds")
    assert above0.to_decide(noisy).text() == f"≈ {samples_to_decide(0.01, 0.02)} seeds would decide it"
    inside = Interval(0.015, 0.0, 0.03, 3, 0.01)  # in the band, 0.005 from its upper edge
    assert band.to_decide(inside) == ToDecide(samples_to_decide(0.005, 0.01), "seeds")
    assert above0.to_decide(Interval(0.03, 0.01, 0.05, 3, 0.01)) is None  # holds: decided
    assert above0.to_decide(Interval(-0.03, -0.05, -0.01, 3, 0.01)) is None  # does not hold: decided
    assert above0.to_decide(None) is None  # not enough runs
    on_edge = above0.to_decide(Interval(0.0, -0.02, 0.02, 3, 0.02))
    assert on_edge.n is None and "no number of seeds would decide it (the mean" in on_edge.text()
    images = above0.to_decide(Interval(0.01, -0.03, 0.05, 3, 0.0, sample_se=0.02))  # 1.96 · 0.02 > 0.01
    assert images.n is None and "more test images would" in images.why
    banks = Interval(0.01, -0.01, 0.03, 4, 0.02, samples="banks")  # Welch's: banks a side
    assert above0.to_decide(banks) == ToDecide(samples_to_decide(0.01, 0.02), "banks")
    assert above0.to_decide(banks).to_dict()["text"].endswith("banks would decide it")
