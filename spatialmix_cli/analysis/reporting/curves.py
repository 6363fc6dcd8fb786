"""Training curves: a quantity (accuracy / PSNR, or loss) vs epoch per learn mode, one panel per setting,
the seeds as a mean ± std band.

Where every run of a learn mode has a ``steps.jsonl`` (each logged step, written by the trainer), the
training curve has a point per logged step at its fractional epoch (``step / steps_per_epoch``): the loss
and metric over the images since the previous logged step. Otherwise (older run records) it has a point
per epoch, the epoch's mean from ``metrics.jsonl``. Test points come from ``metrics.jsonl`` (at the
epochs evaluated), as markers with an error bar (std over seeds). The seeds' mean and std are taken on a
common grid: every x some run of the learn mode logged, each run linearly interpolated there within the
range it covers (seeds of one setting log the same steps, so usually nothing is interpolated).

Reading: x runs from 0 to the setting's epochs with integer ticks; a series with a single point is a
marker, never an invisible line (and per-epoch train points are marked: there is nothing between them).
Panels of the same task and dataset share their y limits (they are compared side by side: the same
quantity on the same data), fitted to the means and train bands they draw (a test error bar wider than
all of them may run out of the frame); those of another task or dataset keep their own. Type is ≥ 8 pt at the
saved size (100 dpi), legends included.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global figure state
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ...config.runfiles import METRICS_FILE, STEPS_FILE
from ...layers.learn import LEARN_MODES
from ...safefiles import atomic_write_figure, read_jsonl
from .collect import Run
from .compare import describe
from .plots import LEARN_STYLE, OTHER_STYLE, panel_title

COLUMNS = 4
PANEL_SIZE = (4.0, 3.1)  # inches at 100 dpi: room for 8-9 pt type
FONT = 8  # points: ticks, axis labels and legends; titles one more
TITLE_CHARS = 46  # a 4-inch panel's title at 9 pt
Rows = dict[int, dict[int, dict[str, Any]]]  # id(run) -> epoch -> metrics.jsonl line
Steps = dict[int, list[dict[str, Any]]]  # id(run) -> steps.jsonl lines, by step


@dataclass(frozen=True)
class Curve:
    """Mean and std over seeds of one quantity at each ``x`` (epochs, fractional for logged steps; ``std``
    None where one seed has the point). ``per_step``: from the logged steps, else one point per epoch."""

    x: list[float]
    mean: list[float]
    std: list[float | None]
    n: list[int]
    per_step: bool = False


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        return read_jsonl(path).rows
    except (OSError, UnicodeDecodeError):
        return []


def epoch_rows(run: Run) -> dict[int, dict[str, Any]]:
    """The run's ``metrics.jsonl`` by epoch (the last line of an epoch wins: a resumed run may repeat one);
    no file or unreadable lines give fewer rows, never an error."""
    rows = _lines(run.path / METRICS_FILE)
    return {int(r["epoch"]): r for r in rows if isinstance(r.get("epoch"), int)}


def step_rows(run: Run) -> list[dict[str, Any]]:
    """The run's ``steps.jsonl`` lines in step order (the last line of a step wins), those with an integer
    step and a finite epoch; no file, a torn or unreadable line give fewer lines, never an error."""
    by_step: dict[int, dict[str, Any]] = {}
    for row in _lines(run.path / STEPS_FILE):
        step, epoch = row.get("step"), row.get("epoch")
        if isinstance(step, int) and isinstance(epoch, int | float) and math.isfinite(epoch):
            by_step[step] = row
    return [by_step[s] for s in sorted(by_step)]


def _value(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _summary(x: list[float], values: list[list[float]], per_step: bool) -> Curve:
    return Curve(
        x,
        [statistics.fmean(v) for v in values],
        [statistics.stdev(v) if len(v) > 1 else None for v in values],
        [len(v) for v in values],
        per_step,
    )


def curve(runs: Sequence[Run], key: str, rows: Rows | None = None) -> Curve:
    """``key`` (``train_loss``, ``test_acc``, ...) at each epoch that some run logged it, over the runs."""
    rows = rows if rows is not None else {id(r): epoch_rows(r) for r in runs}
    by_epoch: dict[int, list[float]] = {}
    for run in runs:
        for epoch, row in rows[id(run)].items():
            value = _value(row, key)
            if value is not None:
                by_epoch.setdefault(epoch, []).append(value)
    epochs = sorted(by_epoch)
    return _summary([float(e) for e in epochs], [by_epoch[e] for e in epochs], per_step=False)


def step_curve(runs: Sequence[Run], key: str, steps: Steps) -> Curve | None:
    """``key`` at each logged step (fractional epoch) over the runs, or None unless every run logged
    it. The grid is every x some run has; a run counts at the grid points within its own range, linearly
    interpolated between its points."""
    series = [
        {float(r["epoch"]): v for r in steps[id(run)] if (v := _value(r, key)) is not None} for run in runs
    ]
    if not series or not all(series):
        return None
    grid = sorted({x for s in series for x in s})
    values: list[list[float]] = [[] for _ in grid]
    for s in series:
        xs, ys = sorted(s), [s[x] for x in sorted(s)]
        for i, x in enumerate(grid):
            if xs[0] <= x <= xs[-1]:
                values[i].append(float(np.interp(x, xs, ys)))
    return _summary(grid, values, per_step=True)


def train_curve(runs: Sequence[Run], key: str, steps: Steps, rows: Rows) -> Curve:
    """The training curve of ``key``: per logged step where every run has them, else per epoch."""
    return step_curve(runs, key, steps) or curve(runs, key, rows)


def settings(runs: list[Run]) -> list[list[Run]]:
    """The runs of each setting (every identity key but the learn mode and the seed), those with a
    ``metrics.jsonl`` only, in a stable order."""
    found: dict[Any, list[Run]] = {}
    for run in runs:
        if (run.path / METRICS_FILE).is_file():
            found.setdefault(run.key(("learn", "seed")), []).append(run)
    return [found[k] for k in sorted(found, key=lambda k: describe(found[k][0], ("learn",)))]


def draw_train(ax: Any, c: Curve, colour: str, scale: float) -> list[float]:
    """The training curve: a line at the mean with a ± std band where two or more seeds have the point;
    a marker on every point where they are epochs (nothing lies between them) or there is one point.
    Returns the y values drawn (means and band edges)."""
    if not c.x:
        return []
    ys = [m * scale for m in c.mean]
    marker = "o" if len(c.x) == 1 or not c.per_step else ""
    ax.plot(c.x, ys, "-", marker=marker, color=colour, lw=1.3, ms=3.5)
    lo = [y - s * scale if s is not None else math.nan for y, s in zip(ys, c.std, strict=True)]
    hi = [y + s * scale if s is not None else math.nan for y, s in zip(ys, c.std, strict=True)]
    ax.fill_between(c.x, lo, hi, color=colour, alpha=0.2, lw=0)
    return [y for y in ys + lo + hi if math.isfinite(y)]


def draw_test(ax: Any, c: Curve, colour: str, scale: float) -> list[float]:
    """The test points: a white-edged marker each (an error bar of ± std where two or more seeds have
    it), joined by a dashed line where there are several. Returns the means drawn."""
    if not c.x:
        return []
    ys = [m * scale for m in c.mean]
    yerr = [s * scale if s is not None else math.nan for s in c.std]
    style = dict(color=colour, marker="D", ms=5, mec="white", mew=0.8, capsize=2.5, lw=1.0, zorder=3)
    ax.errorbar(c.x, ys, yerr=yerr, ls="--" if len(c.x) > 1 else "none", **style)
    return ys


def _quantity(run: Run, quantity: str) -> tuple[str, float, str]:
    """The metric's name in the records, its scale for display and the y label."""
    if quantity == "loss":
        return "loss", 1.0, "loss"
    return ("psnr", 1.0, "PSNR (dB)") if run.config.task == "unshuffle" else ("acc", 100.0, "accuracy (%)")


def _legend(ax: Any, entries: list[tuple[str, str]], per_step: bool) -> None:
    """One entry per learn mode (its colour), then what a line and a marker are, at ``FONT`` points, below
    the axes."""
    handles = [Line2D([], [], color=colour, lw=2.5, label=label) for label, colour in entries]
    train = "train, per step" if per_step else "train, per epoch"
    handles.append(Line2D([], [], color="0.3", lw=1.3, marker="" if per_step else "o", ms=3.5, label=train))
    handles.append(Line2D([], [], color="0.3", ls="none", marker="D", ms=5, mec="white", label="test"))
    # below the axes: inside, it would hide points (a test marker at an epoch's end sits in a corner)
    ax.legend(
        handles=handles,
        fontsize=FONT,
        ncol=min(len(handles), 3),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        handlelength=1.6,
        columnspacing=1.0,
        frameon=False,
    )


def _panel(ax: Any, runs: list[Run], quantity: str, rows: Rows, steps: Steps) -> list[float]:
    """One setting's curves on ``ax``; returns the y values that its limits must hold."""
    first = runs[0]
    name, scale, unit = _quantity(first, quantity)
    entries, per_step, ys = [], True, []
    for learn in LEARN_MODES:
        rs = [r for r in runs if r.config.learn == learn]
        if not rs:
            continue
        colour = LEARN_STYLE.get(learn, OTHER_STYLE)[0]
        train = train_curve(rs, f"train_{name}", steps, rows)
        per_step = per_step and train.per_step
        ys += draw_train(ax, train, colour, scale)
        ys += draw_test(ax, curve(rs, f"test_{name}", rows), colour, scale)
        entries.append((f"{learn} (n={len({r.config.seed for r in rs})})", colour))
    ax.set_title(panel_title(describe(first, ("learn",)), TITLE_CHARS), fontsize=FONT + 1)
    epochs = max(r.config.epochs for r in runs)
    ax.set_xlim(0, epochs * 1.04)  # from 0; the last epoch's marker whole
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch", fontsize=FONT)
    ax.set_ylabel(unit, fontsize=FONT)
    if quantity == "loss" and first.config.task == "unshuffle":
        ax.set_yscale("log")  # the reconstruction loss falls by orders of magnitude in the first epochs
    ax.tick_params(labelsize=FONT)
    ax.grid(alpha=0.3)
    _legend(ax, entries, per_step)
    return ys


def y_limits(values: list[float], log: bool) -> tuple[float, float] | None:
    """Limits that hold ``values`` with a 5 % margin (of the decades, on a log axis); None without any."""
    values = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    if log:
        margin = (hi / lo) ** 0.05 if hi > lo else 2.0
        return lo / margin, hi * margin
    margin = 0.05 * (hi - lo) or 0.05 * abs(hi) or 1.0
    return lo - margin, hi + margin


def draw_curves(found: list[list[Run]], quantity: str) -> Figure:
    """The figure of ``quantity`` (``metric`` or ``loss``): one panel per setting of ``found``. Panels of
    the same task and dataset share their y axis, its limits fitted to their means and train bands: a test
    error bar far wider than the data (one seed's outlier) runs out of the frame instead of squeezing
    every panel of the group."""
    rows: Rows = {id(r): epoch_rows(r) for rs in found for r in rs}
    steps: Steps = {id(r): step_rows(r) for rs in found for r in rs}
    cols = min(len(found), COLUMNS)
    n_rows = math.ceil(len(found) / cols)
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * n_rows), layout="constrained")
    shared: dict[tuple[str, str], Any] = {}
    values: dict[tuple[str, str], list[float]] = {}
    for i, rs in enumerate(found):
        group = (rs[0].config.task, rs[0].config.dataset)
        ax = fig.add_subplot(n_rows, cols, i + 1, sharey=shared.get(group))
        shared.setdefault(group, ax)
        values.setdefault(group, []).extend(_panel(ax, rs, quantity, rows, steps))
    for group, ax in shared.items():
        limits = y_limits(values[group], ax.get_yscale() == "log")
        if limits is not None:
            ax.set_ylim(*limits)
    return fig


def training_curves(runs: list[Run], out: Path) -> list[Path]:
    """``curves-metric.png`` (train and test accuracy / PSNR vs epoch) and ``curves-loss.png`` (loss vs
    epoch): one panel per setting, one colour per learn mode, seeds as mean ± std bands (see the module).
    None without any ``metrics.jsonl``."""
    found = settings(runs)
    if not found:
        return []
    return [
        atomic_write_figure(draw_curves(found, q), out / f"curves-{q}.png", dpi=100)
        for q in ("metric", "loss")
    ]


__all__ = [
    "Curve",
    "curve",
    "draw_curves",
    "draw_test",
    "draw_train",
    "epoch_rows",
    "settings",
    "step_curve",
    "step_rows",
    "train_curve",
    "training_curves",
    "y_limits",
]
