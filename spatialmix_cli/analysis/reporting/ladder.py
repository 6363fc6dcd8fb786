"""The learn-mode ladder (issue 33, beyond the paper): test accuracy against trainable parameters, one point
per learn mode of a setting (head ⊂ norm ⊂ chans ⊂ full, and space), the seeds as error bars, every setting
on one axes so the models compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global figure state

from ...layers.learn import LEARN_MODES
from ...safefiles import atomic_write_figure
from .collect import Run
from .compare import describe, groups, metric_stat
from .plots import LEARN_STYLE, OTHER_STYLE, error_bars, panel_title

BELOW_CHANS = ("head", "norm")  # a report draws the ladder when some run trains less than chans
LINE_STYLES = ("-", "--", ":", "-.")


def ladder_settings(runs: list[Run]) -> list[dict[tuple[str, ...], list[Run]]]:
    """Settings (every identity key but learn mode and seed) of clean classifiers run under at least three
    learn modes, in a stable order; none unless some run is ``head`` or ``norm``."""
    clean = [r for r in runs if r.config.task == "classify" and r.config.adv == "none"]
    if not any(r.config.learn in BELOW_CHANS for r in clean):
        return []
    found = [g for g in groups(clean, ("learn",)) if len(g) >= 3]
    return sorted(found, key=lambda g: describe(next(iter(g.values()))[0], ("learn",)))


def trainable_params(runs: list[Run]) -> float:
    """The cell's trainable parameter count (the same for every seed of a cell; the mean if not)."""
    counts = [float(r.result["params_trainable"]) for r in runs if "params_trainable" in r.result]
    return sum(counts) / len(counts) if counts else float("nan")


def _setting(ax: Any, g: dict[tuple[str, ...], list[Run]], style: str) -> None:
    """One setting: a grey line through the ladder's modes (every mode but space), a faint one on to space,
    a point per mode."""
    modes = [m for m in LEARN_MODES if (m,) in g]
    stats = {m: metric_stat(g[(m,)]) for m in modes}
    xs = {m: trainable_params(g[(m,)]) for m in modes}
    setting = describe(g[(modes[0],)][0], ("learn",))
    seeds = max(s.n for s in stats.values())
    rungs = [m for m in modes if m != "space"]
    ax.plot(
        [xs[m] for m in rungs],
        [stats[m].mean * 100 for m in rungs],
        style,
        color="0.45",
        lw=1.2,
        label=f"{setting}, n={seeds} seeds",
    )
    if "space" in modes and rungs:  # space beside the ladder: a faint link to the setting's last rung
        ends = (rungs[-1], "space")
        ax.plot(
            [xs[m] for m in ends], [stats[m].mean * 100 for m in ends], style, color="0.45", lw=1, alpha=0.35
        )
    for m in modes:
        colour, marker = LEARN_STYLE.get(m, OTHER_STYLE)
        y = stats[m].mean * 100
        ax.errorbar(
            [xs[m]],
            [y],
            yerr=error_bars([stats[m]], 100),
            fmt=marker,
            color=colour,
            ms=7,
            capsize=3,
            zorder=3,
        )
        ax.annotate(m, (xs[m], y), textcoords="offset points", xytext=(7, -4), fontsize=8, color=colour)


def ladder_figure(runs: list[Run], out: Path) -> list[Path]:
    """``ladder.png``: one line per setting through its learn modes in ladder order (log-scale trainable
    parameters), each point coloured by learn mode, error bars the std over seeds."""
    found = ladder_settings(runs)
    if not found:
        return []
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for i, g in enumerate(found):
        _setting(ax, g, LINE_STYLES[i % len(LINE_STYLES)])
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)", fontsize=9)
    ax.set_ylabel("test accuracy (%)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, which="both")
    title = "Which parameters must learn? head ⊂ norm ⊂ chans ⊂ full (line), and space (faint)"
    ax.set_title(panel_title(title, 100), fontsize=10)
    fig.legend(loc="outside lower center", fontsize=8, ncols=1)
    return [atomic_write_figure(fig, out / "ladder.png", dpi=100)]


__all__ = ["ladder_figure", "ladder_settings", "trainable_params"]
