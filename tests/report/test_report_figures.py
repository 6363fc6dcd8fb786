"""Figures a reader can trust and the report's numbers as CSV: built from constructed run directories
(config, result and metrics written by the test, no training), so every test here is fast."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from spatialmix_cli.analysis.reporting import build_report, load_runs, plots
from spatialmix_cli.analysis.reporting.compare import Stat
from spatialmix_cli.analysis.reporting.curves import curve, training_curves
from spatialmix_cli.analysis.reporting.numbers import RUNS_CSV, SETTINGS_CSV
from spatialmix_cli.analysis.spectra.plot import (
    FLOOR_DB,
    checkpoint_name,
    colour_floor,
    colour_range,
    plot_grid,
)

from conftest import tiny_config

# (learn, seed) -> (test acc, train acc per epoch); the test metric of each run is set by the test
CELLS = {("full", 0): (0.80, [0.50, 0.70]), ("full", 1): (0.84, [0.54, 0.74]),
         ("chans", 0): (0.70, [0.40, 0.60]), ("chans", 1): (0.76, [0.44, 0.66]),
         ("space", 0): (0.50, [0.30, 0.45])}  # fmt: skip


def make_run(root: Path, learn: str, seed: int, *, metrics: bool = True, **config: Any) -> Path:
    test_acc, train = CELLS[(learn, seed)]
    extra = "".join(f"_{k}-{v}" for k, v in sorted(config.items()))
    run = root / "sweep" / f"seed-{seed}_learn-{learn}{extra}"
    run.mkdir(parents=True)
    cfg = tiny_config(learn=learn, seed=seed, **config)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    result = {"test_acc": test_acc, "train_acc": train[-1], "epochs": len(train), "seconds": 3.5 + seed}
    (run / "result.json").write_text(json.dumps(result))
    if metrics:
        lines = [{"epoch": e + 1, "train_loss": 1 - a, "train_acc": a, "test_acc": None, "test_loss": None}
                 for e, a in enumerate(train)]  # fmt: skip
        lines[-1] |= {"test_acc": test_acc, "test_loss": 1 - test_acc}
        (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for learn, seed in CELLS:
        make_run(root, learn, seed)
    return root


@pytest.fixture(scope="module")
def report(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_report([runs_root], tmp_path_factory.mktemp("report"), fmt="both", draws=1, pad=32)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_runs_csv_has_a_row_per_run_with_the_keys_that_vary(report: Any) -> None:
    rows = read_csv(report.out / RUNS_CSV)
    assert len(rows) == len(CELLS)
    assert list(rows[0])[:3] == ["run_dir", "learn", "seed"]  # learn is the only config key that varies
    for col in ("test_metric", "train_metric", "epochs_trained", "seconds", "metric"):
        assert col in rows[0]
    by_name = {Path(r["run_dir"]).name: r for r in rows}
    row = by_name["seed-1_learn-chans"]
    assert (row["learn"], row["seed"], row["metric"]) == ("chans", "1", "test_acc")
    assert float(row["test_metric"]) == CELLS[("chans", 1)][0] and float(row["seconds"]) == 4.5


def test_settings_csv_reads_back_the_numbers_of_the_settings_table(report: Any) -> None:
    rows = {r["learn"]: r for r in read_csv(report.out / SETTINGS_CSV)}
    assert set(rows) == {"full", "chans", "space"}
    chans = rows["chans"]
    assert float(chans["mean"]) == pytest.approx(0.73) and chans["n"] == "2" and chans["seeds"] == "0 1"
    assert rows["space"]["std"] == "" and rows["space"]["n"] == "1"  # one run has no spread
    assert [Path(p).name for p in chans["run_dirs"].split()] == ["seed-0_learn-chans", "seed-1_learn-chans"]
    table = report.tables[0]
    cells = {row[2]: row[-1] for row in table.rows}
    assert cells["chans"] == f"{float(chans['mean']) * 100:.2f} ± {float(chans['std']) * 100:.2f}% (n=2)"
    summary = json.loads((report.out / "summary.json").read_text())
    assert {r["learn"]: r["mean"] for r in summary["numbers"]["settings"]} == {
        k: float(v["mean"]) for k, v in rows.items()
    }
    assert len(summary["numbers"]["runs"]) == len(CELLS)


def test_curves_figure_is_drawn_when_runs_logged_metrics(
    report: Any, runs_root: Path, tmp_path: Path
) -> None:
    names = [p.name for _, p in report.figures]
    assert "curves-metric.png" in names and "curves-loss.png" in names
    runs, _ = load_runs([runs_root])
    chans = [r for r in runs if r.config.learn == "chans"]
    c = curve(chans, "train_acc")
    assert c.x == [1, 2] and c.n == [2, 2] and c.mean[1] == pytest.approx(0.63)
    assert curve(chans, "test_acc").x == [2]  # logged at the last epoch only
    bare = tmp_path / "bare"
    make_run(bare, "full", 0, metrics=False)
    assert training_curves(load_runs([bare])[0], tmp_path) == []
    assert not list(tmp_path.glob("curves-*.png"))


def test_no_error_bar_where_a_cell_has_one_run(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert [math.isnan(x) for x in plots.error_bars([Stat(0.5, None, 1), Stat(0.5, 0.1, 2)], 100)] == [
        True,
        False,
    ]
    assert plots.error_bars([Stat(0.5, 0.1, 2)], 100) == [pytest.approx(10.0)]
    figures = []
    monkeypatch.setattr(plots, "atomic_write_figure", lambda fig, path, **kw: figures.append(fig) or path)
    root = tmp_path / "r"
    for depth, learn, seed in (
        (1, "full", 0),
        (2, "full", 0),
        (1, "chans", 0),
        (1, "chans", 1),
        (2, "chans", 0),
    ):
        make_run(root, learn, seed, depth=depth)
    plots.sweep(load_runs([root])[0], "depth", tmp_path, "vs-depth")
    (ax,) = figures[0].axes
    bars = [seg for coll in ax.collections for seg in coll.get_segments()]
    finite = [seg for seg in bars if len(seg) and all(math.isfinite(v) for point in seg for v in point)]
    assert len(finite) == 1  # only chans at depth 1 has two seeds
    assert sum(t.get_text() == "n=1" for t in ax.texts) == 3


def test_colour_range_follows_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert colour_floor(-9.2) == -10.0 and colour_floor(-0.3) == -5.0
    assert colour_floor(-80.0) == FLOOR_DB and colour_floor(-21.0) == -25.0
    flat = torch.ones(16, 16) + 0.5 * torch.rand(16, 16, generator=torch.Generator().manual_seed(0))
    import matplotlib.axes

    seen, real = [], matplotlib.axes.Axes.imshow
    monkeypatch.setattr(
        matplotlib.axes.Axes, "imshow", lambda self, *a, **kw: seen.append(kw["vmin"]) or real(self, *a, **kw)
    )
    plot_grid([[("a", flat)]], tmp_path / "g.png")
    # dB re. a flat spectrum (|H| = 1): the top is the highest value rounded up to 5 dB, here 5
    top = 20 * math.log10(float(flat.max()))
    assert 0 < top <= 5 and colour_range(0.2, top) == (0.0, 5.0)
    assert seen == [colour_range(20 * math.log10(float(flat.min())), top)[0]] == [0.0]
    assert colour_range(-80.0, 13.0) == (15.0 + FLOOR_DB, 15.0)


def test_checkpoint_titles_name_the_run_not_the_weights_file() -> None:
    assert checkpoint_name("runs/fig7-cpu/chans/seed-0/model.safetensors") == "chans/seed-0"
    assert checkpoint_name("elsewhere/resnet.safetensors") == "resnet.safetensors"


def test_panel_titles_wrap_and_keep_the_budget_together() -> None:
    title = plots.panel_title("fashion-mnist convmixer w128 d4 k5 p2 fgsm-trained (10000 img × 3 ep)")
    lines = title.split("\n")
    assert len(lines) == 2 and all(len(line) <= plots.TITLE_CHARS for line in lines)
    assert lines[-1] == "(10000 img × 3 ep)"


def test_html_verdicts_are_css_marks_and_words_not_emoji(report: Any) -> None:
    html = (report.out / "report.html").read_text()
    assert "✅" not in html and "❌" not in html  # an emoji font may be missing (headless Chromium)
    assert "<span class='mark unknown'></span>not enough runs" in html and ".mark.holds{" in html
