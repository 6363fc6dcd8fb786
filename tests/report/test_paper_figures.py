"""Paper figures a reader can use as they are saved: fig6's value labels clear of the error bars and legible,
fig7's ε axis in units of 1/255 with evenly spaced attacked ε, titles of at most two lines, Fig. 9's runs
chosen by a stated rule or by --fig9-run, and the report's screenshot as tall as its page. Built from
constructed run directories (config, result and attack lines written by the test, no training)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg

from spatialmix_cli.analysis.reporting import load_runs, plots
from spatialmix_cli.analysis.reporting.browser import (
    FALLBACK_HEIGHT,
    MAX_HEIGHT,
    BrowserCheck,
    check_html,
    find_chromium,
    page_height,
    shot_height,
)
from spatialmix_cli.analysis.reporting.fig9 import fig9_runs
from spatialmix_cli.errors import ConfigError

from conftest import tiny_config

EPS = (1, 2, 4, 8)  # × 1/255


def attack_line(method: str, eps: float, clean: float, robust: float) -> dict[str, Any]:
    pgd = method == "pgd"
    return {"method": method, "eps": eps, "steps": 2 if pgd else None, "alpha": eps if pgd else None,
            "random_start": False if pgd else None, "n": 1000, "seed": 0, "clean_acc": clean,
            "robust_acc": robust, "flags": [], "source": None}  # fmt: skip


def make_run(root: Path, name: str, acc: float, *, weights: bool = False, attacks: bool = True,
             **config: Any) -> Path:  # fmt: skip
    """A finished run directory with test accuracy ``acc`` and FGSM / PGD-2 lines at every ε of EPS (robust
    accuracy falling with ε); ``weights``: a placeholder model.safetensors (Fig. 9's choice reads none)."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config(**config).to_dict()))
    (run / "result.json").write_text(json.dumps({"test_acc": acc}))
    if weights:
        (run / "model.safetensors").write_bytes(b"")
    if attacks:
        lines = [attack_line(m, e / 255, acc, acc * (1 - 0.1 * e)) for m in ("fgsm", "pgd") for e in EPS]
        (run / "attacks.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures plots.* draw, kept (not written)."""
    figures: list[Any] = []
    monkeypatch.setattr(plots, "atomic_write_figure", lambda fig, path, **kw: figures.append(fig) or path)
    return figures


@pytest.fixture
def attacked(tmp_path: Path) -> list[Any]:
    root = tmp_path / "runs"
    # chans's bars are too short to hold their labels: those go above the error bars, full's inside the bars
    for learn, seed, acc in (("full", 0, 0.97), ("full", 1, 0.93), ("chans", 0, 0.25), ("chans", 1, 0.20)):
        make_run(root, f"{learn}-{seed}", acc, learn=learn, seed=seed)
    return load_runs([root])[0]


def _boxes(fig: Any) -> Any:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out as it is saved (at the figure's dpi, that of the saved PNG)
    return canvas.get_renderer()


def _all_texts(fig: Any) -> list[Any]:
    texts = list(fig.texts) + [t for leg in fig.legends for t in leg.get_texts()]
    for ax in fig.axes:
        texts += [*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label]
        texts += [*ax.get_xticklabels(), *ax.get_yticklabels()]
    return [t for t in texts if t.get_text() and t.get_visible()]


def test_fig6_value_labels_are_legible_and_clear_of_the_error_bars(
    attacked: list[Any], drawn: list[Any]
) -> None:
    plots.attack_bars(attacked, Path("unused"))
    (fig,) = drawn
    renderer = _boxes(fig)
    assert all(t.get_fontsize() >= 8 for t in _all_texts(fig))
    (ax,) = fig.axes
    assert ax.get_ylim() == (0.0, 100.0)  # an honest 0-based axis that ends at 100
    labels = [t for t in ax.texts if t.get_text()[0].isdigit()]
    assert len(labels) == 3 * 2  # clean, FGSM and PGD-2 for full and chans
    segments = [
        seg
        for c in ax.containers
        if getattr(c, "errorbar", None)
        for lc in c.errorbar.lines[2]
        for seg in lc.get_segments()
    ]
    assert len(segments) == len(labels)  # two seeds in every cell: every bar has an error bar
    for text in labels:
        box = text.get_window_extent(renderer).expanded(1.0, 1.0)
        for seg in segments:
            (x0, y0), (x1, y1) = ax.transData.transform(seg)
            crosses_x = box.x0 <= x0 <= box.x1
            assert not (crosses_x and box.y0 < max(y0, y1) and min(y0, y1) < box.y1), text.get_text()
    boxes = [t.get_window_extent(renderer) for t in labels]
    axes_box = ax.get_window_extent(renderer)
    assert all(axes_box.y0 < b.y0 and b.y1 < axes_box.y1 for b in boxes)  # inside the axes
    assert {t.get_color() for t in labels} == {"white", "black"}  # inside the tall bars, above the short
    title = ax.get_title()
    assert len(title.split("\n")) <= 2 and "ε = 1/255" in title and "2 seeds" in title


def test_fig7_eps_axis_spaces_the_attacked_eps_evenly(attacked: list[Any], drawn: list[Any]) -> None:
    plots.robust_vs_eps(attacked, Path("unused"))
    (fig,) = drawn
    _boxes(fig)
    assert all(t.get_fontsize() >= 8 for t in _all_texts(fig))
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [0, *EPS]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "4", "8"]
        xs = [ax.transData.transform((x, 0))[0] for x in (0, *EPS)]
        gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
        assert max(gaps) - min(gaps) < 1.0  # px: 0, 1, 2, 4, 8 evenly spaced, none crowded
        assert len(ax.get_title().split("\n")) <= 2
    suptitle = fig.get_suptitle()
    assert "synthetic" in suptitle and "seeds" in suptitle
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "chans, random, n=2" in legend and "full, random, n=2" in legend
    assert any("convmixer" in t for t in legend)  # the setting, as a heading


def test_panel_titles_keep_to_two_lines_at_a_legible_size() -> None:
    long = "fashion-mnist convmixer w128 d4 k5 p2 smooth σ=0.5 fgsm-trained 64px, ε = 1/255, 2–3 seeds (10000 img × 3 ep)"
    title = plots.panel_title(long)
    assert len(title.split("\n")) == 2 and title.replace("\n", " ") == long
    assert plots.title_size(title) >= 8
    assert plots.title_size(plots.panel_title("short")) == 9


def test_fig9_default_rule_takes_the_best_chans_random_run_and_its_full_twin(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for name, acc, learn, filters, seed, weights in (
        ("a-chans-box", 0.99, "chans", "box", 0, True),  # not random: never Fig. 9's frozen run
        ("b-chans", 0.70, "chans", "random", 0, True),
        ("c-chans", 0.80, "chans", "random", 1, True),
        ("d-chans", 0.95, "chans", "random", 2, False),  # the best, but its weights were not kept
        ("e-full", 0.90, "full", "random", 0, True),
        ("f-full", 0.85, "full", "random", 1, True),
        ("g-chans", 0.90, "chans", "random", 3, True),  # better, but no full twin to contrast it with
    ):
        make_run(root, name, acc, weights=weights, attacks=False, learn=learn, filters=filters, seed=seed)
    runs, _ = load_runs([root])
    choice = fig9_runs(runs)
    assert (choice.chans.path.name, choice.full.path.name) == ("c-chans", "f-full")
    assert (
        "80.0%" in choice.notes["chans"]
        and "80.0%; 2 of the 3 chans random-bank runs with weights have one" in choice.notes["chans"]
    )
    assert choice.caption("chans").endswith(f"c-chans ({choice.notes['chans']})")
    assert choice.notes["full"] == "the full run of its setting and seed"
    assert choice.title("chans") == "best test accuracy among chans runs with a full twin"
    picked = fig9_runs(runs, root / "b-chans")
    assert (picked.chans.path.name, picked.full.path.name) == ("b-chans", "e-full")
    assert picked.notes == {"chans": "chosen with --fig9-run", "full": "the full run of its setting and seed"}
    picked = fig9_runs(runs, root / "e-full")  # a full run picked: its chans twin beside it
    assert (picked.chans.path.name, picked.full.path.name) == ("b-chans", "e-full")
    alone = fig9_runs(runs, root / "g-chans")
    assert alone.full is None and alone.title("chans") == "chosen with --fig9-run"
    assert alone.notes["chans"].endswith("no full run of its setting and seed with weights")
    with pytest.raises(ConfigError, match="has no weights"):
        fig9_runs(runs, root / "d-chans")
    with pytest.raises(ConfigError, match="not one of the reported run directories"):
        fig9_runs(runs, tmp_path)
    assert fig9_runs([]).caption("chans") == ""


def test_fig9_run_that_is_not_a_reported_run_is_one_error_line(tmp_path: Path, cli: Any) -> None:
    root = tmp_path / "runs"
    make_run(root, "chans", 0.8, weights=True, attacks=False, learn="chans")
    make_run(root, "full", 0.9, attacks=False, learn="full")
    for bad, says in ((tmp_path / "elsewhere", "not one of the reported"), (root / "full", "has no weights")):
        bad.mkdir(exist_ok=True)
        result = cli("report", str(root), "--out", str(tmp_path / "rep"), "--fig9-run", str(bad))
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --fig9-run") and says in lines[0]
        assert not (tmp_path / "rep").exists()  # refused before anything was written


def test_page_height_is_read_from_the_dumped_dom_and_capped() -> None:
    dom = '<html><body data-images-loaded="3" data-images-broken="0" data-page-height="14321"><p>x</p>'
    assert page_height(dom) == 14321
    assert page_height("<body data-images-loaded='3'>") is None
    assert (
        shot_height(14321) == 14321
        and shot_height(10**6) == MAX_HEIGHT
        and shot_height(None) == FALLBACK_HEIGHT
    )
    assert BrowserCheck(1, 0, None, page_height=40000, shot_height=MAX_HEIGHT).cut
    assert not BrowserCheck(1, 0, None, page_height=14321, shot_height=14321).cut


@pytest.mark.slow  # starts Chromium twice; fast: test_page_height_is_read_from_the_dumped_dom_and_capped
@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (apt-get install chromium)")
def test_screenshot_covers_a_page_taller_than_the_old_fixed_height(tmp_path: Path) -> None:
    from spatialmix_cli.analysis.reporting.render import IMAGE_CHECK_SCRIPT

    page = tmp_path / "tall.html"
    tall = FALLBACK_HEIGHT + 3000
    page.write_text(
        f"<html><body style='margin:0'><div style='height:{tall}px'></div>{IMAGE_CHECK_SCRIPT}</body></html>"
    )
    seen = check_html(page, tmp_path / "shot.png")
    width, height = struct.unpack(">II", (tmp_path / "shot.png").read_bytes()[16:24])  # the PNG's IHDR
    assert seen.page_height == tall and (width, height) == (1280, tall) and not seen.cut
