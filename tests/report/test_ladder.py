"""The learn-mode ladder in the report (issue 33): the share of the head-to-full gap that chans recovers and
chans vs norm as verdicts with paired intervals, and the ladder figure (accuracy against trainable
parameters). Runs are constructed in memory: only their configs and results matter here."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.image import imread

from spatialmix_cli.analysis.reporting import FAILS, HOLDS
from spatialmix_cli.analysis.reporting.claims import (
    chans_beats_norm,
    chans_recovers_the_gap,
    gap_recovered_by_seed,
)
from spatialmix_cli.analysis.reporting.collect import Run
from spatialmix_cli.analysis.reporting.ladder import ladder_figure, ladder_settings

from conftest import tiny_config

PARAMS = {"head": 100, "norm": 180, "chans": 5_000, "full": 6_000, "space": 1_500}


def cells(accuracies: dict[str, list[float]], **config: object) -> list[Run]:
    """One run per learn mode and seed with the given test accuracies."""
    return [
        Run(
            Path(f"/runs/{learn}-{seed}"),
            tiny_config(learn=learn, seed=seed, **config),
            {"test_acc": acc, "params_trainable": PARAMS[learn]},
        )  # fmt: skip
        for learn, accs in accuracies.items()
        for seed, acc in enumerate(accs)
    ]


def test_the_recovered_share_is_per_seed_and_skips_seeds_without_a_gap() -> None:
    runs = cells({"head": [0.60, 0.50, 0.70], "chans": [0.78, 0.75, 0.70], "full": [0.80, 0.80, 0.70]})
    by = {r.config.learn: [x for x in runs if x.config.learn == r.config.learn] for r in runs}
    shares = gap_recovered_by_seed(by["head"], by["chans"], by["full"])
    assert shares == pytest.approx({0: 0.9, 1: 25 / 30})  # seed 2: full − head = 0, no share


def test_claim_10_holds_when_chans_closes_most_of_the_gap_and_fails_when_it_does_not() -> None:
    good = cells({"head": [0.60, 0.61, 0.59], "chans": [0.79, 0.80, 0.785], "full": [0.80, 0.81, 0.80]})
    claim = chans_recovers_the_gap(good)
    assert claim.verdict == HOLDS and "(chans − head) / (full − head)" in claim.evidence[0]
    assert "n=3 seeds" in claim.evidence[0]
    bad = cells({"head": [0.60, 0.61, 0.59], "chans": [0.65, 0.66, 0.64], "full": [0.80, 0.81, 0.80]})
    assert chans_recovers_the_gap(bad).verdict == FAILS


def test_claim_11_pairs_chans_and_norm_by_seed() -> None:
    runs = cells({"norm": [0.70, 0.75, 0.80], "chans": [0.72, 0.77, 0.82]})  # +2 points every seed
    claim = chans_beats_norm(runs)
    assert claim.verdict == HOLDS and claim.comparisons[0].interval.mean == pytest.approx(0.02)
    assert chans_beats_norm(cells({"norm": [0.80, 0.81, 0.82], "chans": [0.70, 0.71, 0.72]})).verdict == FAILS


def test_the_ladder_needs_a_run_below_chans() -> None:
    assert ladder_settings(cells({"chans": [0.8, 0.8], "full": [0.8, 0.8], "space": [0.7, 0.7]})) == []


def test_the_ladder_figure_puts_each_mode_at_its_trainable_parameters(tmp_path: Path) -> None:
    accs = {
        "head": [0.6, 0.62],
        "norm": [0.7, 0.71],
        "chans": [0.8, 0.81],
        "full": [0.82, 0.83],
        "space": [0.75, 0.74],
    }
    runs = cells(accs) + cells({k: v[:1] for k, v in accs.items() if k != "space"}, width=32)
    settings = ladder_settings(runs)
    assert len(settings) == 2
    (path,) = ladder_figure(runs, tmp_path)
    assert imread(path).shape[:2] == (460, 700)  # 7 × 4.6 in at 100 dpi


def test_the_ladder_axes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drawn data: one grey line per setting through its modes in ladder order, x = trainable params."""
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    monkeypatch.setattr(
        "spatialmix_cli.analysis.reporting.ladder.atomic_write_figure",
        lambda fig, path, dpi: drawn.append(fig) or path,
    )
    accs = {"head": [0.6, 0.62], "norm": [0.7, 0.71], "chans": [0.8, 0.81], "full": [0.82, 0.83]}
    ladder_figure(cells(accs), tmp_path)
    (ax,) = drawn[0].axes
    (line,) = [ln for ln in ax.get_lines() if ln.get_color() == "0.45"]
    assert list(line.get_xdata()) == [100, 180, 5_000, 6_000]
    assert list(line.get_ydata()) == pytest.approx([61, 70.5, 80.5, 82.5])
    assert ax.get_xscale() == "log"
    assert min(t.get_fontsize() for t in drawn[0].legends[0].get_texts()) >= 8
