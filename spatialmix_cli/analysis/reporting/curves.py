"""Training curves from each run's ``metrics.jsonl``: a quantity vs epoch per learn mode, one panel per
setting, the seeds as a mean ± std band."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global figure state
from matplotlib.ticker import MaxNLocator

from ...config.runfiles import METRICS_FILE
from ...layers.learn import LEARN_MODES
from ...safefiles import atomic_write_figure, read_jsonl
from .collect import Run
from .compare import describe
from .plots import panel_title

_COLOURS = {"full": "tab:blue", "chans": "tab:orange", "space": "tab:green"}
COLUMNS = 4


@dataclass(frozen=True)
class Curve:
    """Mean and std over seeds of one quantity at each epoch (``std`` None where one seed has it)."""

    epochs: list[int]
    mean: list[float]
    std: list[float | None]
    n: list[int]


def epoch_rows(run: Run) -> dict[int, dict[str, Any]]:
    """The run's ``metrics.jsonl`` by epoch (the last line of an epoch wins: a resumed run may repeat one);
    no file or unreadable lines give fewer rows, never an error."""
    try:
        rows = read_jsonl(run.path / METRICS_FILE).rows
    except (OSError, UnicodeDecodeError):
        return {}
    return {int(r["epoch"]): r for r in rows if isinstance(r.get("epoch"), int)}


def curve(runs: Sequence[Run], key: str, rows: dict[int, dict[int, dict[str, Any]]] | None = None) -> Curve:
    """``key`` (``train_loss``, ``test_acc``, ...) at each epoch that some run logged it, over the runs."""
    rows = rows if rows is not None else {id(r): epoch_rows(r) for r in runs}
    by_epoch: dict[int, list[float]] = {}
    for run in runs:
        for epoch, row in rows[id(run)].items():
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                by_epoch.setdefault(epoch, []).append(float(value))
    epochs = sorted(by_epoch)
    values = [by_epoch[e] for e in epochs]
    return Curve(
        epochs,
        [statistics.fmean(v) for v in values],
        [statistics.stdev(v) if len(v) > 1 else None for v in values],
        [len(v) for v in values],
    )


def settings(runs: list[Run]) -> list[list[Run]]:
    """The runs of each setting (every identity key but the learn mode and the seed), those with a
    ``metrics.jsonl`` only, in a stable order."""
    found: dict[Any, list[Run]] = {}
    for run in runs:
        if (run.path / METRICS_FILE).is_file():
            found.setdefault(run.key(("learn", "seed")), []).append(run)
    return [found[k] for k in sorted(found, key=lambda k: describe(found[k][0], ("learn",)))]


def _draw(ax: Any, c: Curve, colour: str, style: str, label: str, scale: float) -> None:
    """A line at the mean, a band of ± std where two or more seeds have the epoch (and, for points, an
    error bar: a test metric logged at a single epoch has no band to draw)."""
    if not c.epochs:
        return
    ys = [m * scale for m in c.mean]
    if "o" in style:  # points (a test metric every few epochs): an error bar each
        yerr = [s * scale if s is not None else math.nan for s in c.std]
        ax.errorbar(c.epochs, ys, yerr=yerr, fmt=style, color=colour, label=label, lw=1.2, ms=3, capsize=2)
        return
    ax.plot(c.epochs, ys, style, color=colour, label=label, lw=1.2)
    lo = [y - (s or 0) * scale if s is not None else math.nan for y, s in zip(ys, c.std, strict=True)]
    hi = [y + (s or 0) * scale if s is not None else math.nan for y, s in zip(ys, c.std, strict=True)]
    ax.fill_between(c.epochs, lo, hi, color=colour, alpha=0.2, lw=0)


def _panel(ax: Any, runs: list[Run], quantity: str, rows: dict[int, dict[int, dict[str, Any]]]) -> None:
    first = runs[0]
    unshuffle = first.config.task == "unshuffle"
    name, scale, unit = ("psnr", 1.0, "PSNR (dB)") if unshuffle else ("acc", 100.0, "accuracy (%)")
    if quantity == "loss":
        name, scale, unit = "loss", 1.0, "loss"
    for learn in LEARN_MODES:
        rs = [r for r in runs if r.config.learn == learn]
        if not rs:
            continue
        colour = _COLOURS.get(learn, "tab:gray")
        seeds = len({r.config.seed for r in rs})
        _draw(ax, curve(rs, f"train_{name}", rows), colour, "-", f"{learn} train (n={seeds})", scale)
        _draw(ax, curve(rs, f"test_{name}", rows), colour, "o--", f"{learn} test", scale)
    ax.set_title(panel_title(describe(first, ("learn",)), 44), fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    if quantity == "loss" and unshuffle:
        ax.set_yscale("log")  # the reconstruction loss falls by orders of magnitude in the first epochs
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def training_curves(runs: list[Run], out: Path) -> list[Path]:
    """``curves-metric.png`` (train and test accuracy / PSNR vs epoch) and ``curves-loss.png`` (loss vs
    epoch): one panel per setting, one colour per learn mode, seeds as mean ± std bands. None without
    any ``metrics.jsonl``."""
    found = settings(runs)
    if not found:
        return []
    rows = {id(r): epoch_rows(r) for rs in found for r in rs}
    paths = []
    for quantity in ("metric", "loss"):
        cols = min(len(found), COLUMNS)
        n_rows = math.ceil(len(found) / cols)
        fig = Figure(figsize=(3.4 * cols, 2.7 * n_rows), layout="constrained")
        for i, rs in enumerate(found):
            _panel(fig.add_subplot(n_rows, cols, i + 1), rs, quantity, rows)
        paths.append(atomic_write_figure(fig, out / f"curves-{quantity}.png", dpi=100))
    return paths


__all__ = ["Curve", "curve", "epoch_rows", "settings", "training_curves"]
