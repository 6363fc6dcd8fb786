"""One matplotlib figure per paper figure type that the runs cover. Each function returns the written
PNG paths (none when the runs do not cover that figure)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global figure state
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ...attacks.registry import ATTACKS, GRADIENT_ATTACKS
from ...config.banks import parse_bank
from ...layers.learn import LEARN_MODES
from ...safefiles import atomic_write_bytes, atomic_write_figure, read_bytes
from ..spectra import banks as spectra_banks
from ..spectra.plot import checkpoint_name, plot_checkpoint, plot_drawn
from .collect import Run
from .compare import Stat, attack_clean_stat, attack_points, describe, groups, metric_stat, robust_stat
from .fig9 import Fig9Choice, fig9_runs

LEARN_STYLE = {
    "head": ("tab:purple", "v"),
    "norm": ("tab:brown", "P"),
    "chans": ("tab:orange", "s"),
    "full": ("tab:blue", "o"),
    "space": ("tab:green", "^"),
}
OTHER_STYLE = ("tab:gray", "D")  # a learn mode added to LEARN_MODES is drawn too, before it has its own style


def _figure(panels: int) -> tuple[Any, list[Any]]:
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]
    return fig, axes


TITLE_CHARS = 52  # a 4.2-inch panel holds about this many characters of a 9-point title
TITLE_LINES = 2  # a panel's title is at most this many lines


def panel_title(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` wrapped onto at most TITLE_LINES lines of about ``width`` characters (at word breaks), so
    a panel's title neither runs off the figure's edge nor into its neighbour's; a text too long for that
    is wrapped at a larger width (set it at a smaller size: :func:`title_size`)."""
    cut = text.rfind(" (")  # keep a trailing "(4000 img × 3 ep)" on one line: no-break spaces inside it
    kept = text if cut < 0 else text[:cut] + " " + text[cut + 1 :].replace(" ", "\u00a0")
    lines = textwrap.wrap(kept, width, break_on_hyphens=False)
    while len(lines) > TITLE_LINES:
        width += 4
        lines = textwrap.wrap(kept, width, break_on_hyphens=False)
    return "\n".join(lines).replace("\u00a0", " ") or text


def title_size(title: str, width: int = TITLE_CHARS, size: float = 9.0) -> float:
    """The font size (pt) at which ``title``'s longest line fits where ``width`` characters of ``size``
    fit, never below 8 pt."""
    longest = max((len(line) for line in title.split("\n")), default=0)
    return max(8.0, min(size, size * width / max(longest, 1)))


def _set_title(ax: Any, text: str, width: int = TITLE_CHARS) -> None:
    title = panel_title(text, width)
    ax.set_title(title, fontsize=title_size(title, width))


def seeds_text(stats: Sequence[Stat]) -> str:
    """``3 seeds`` (or ``2–3 seeds`` where cells differ) over the cells of ``stats`` that have runs."""
    ns = sorted({s.n for s in stats if s.n})
    if not ns:
        return "no runs"
    count = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    return f"{count} seed" + ("" if ns == [1] else "s")


def error_bars(stats: Sequence[Stat], scale: float = 1.0) -> list[float]:
    """Half-lengths of the error bars (std over seeds × ``scale``); NaN, which matplotlib draws as no bar
    at all, where a cell has a single run (n = 1 has no spread: a zero-width bar would claim one)."""
    return [s.std * scale if s.std is not None and s.n > 1 else math.nan for s in stats]


def _mark_single(ax: Any, xs: Sequence[float], ys: Sequence[float], stats: Sequence[Stat]) -> None:
    """Write ``n=1`` beside every point that is one run (it has no error bar)."""
    for x, y, s in zip(xs, ys, stats, strict=True):
        if s.n == 1:
            ax.annotate("n=1", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color="0.3")


LABEL_PT = 8.0  # value labels on bars, at the saved size
INSIDE_FROM = (
    0.3  # a label goes inside its bar when the bar's part below its error bar is this share of the axis
)


def _bar_labels(ax: Any, bars: Any, stats: Sequence[Stat], scale: float) -> None:
    """Each bar's value (with ``n=1`` where it is a single run, drawn without an error bar), written
    upright inside the bar below its error bar's low end, or, on a bar too short to hold it, above its
    error bar's top: never across an error bar."""
    top = ax.get_ylim()[1]
    for bar, s, err in zip(bars, stats, error_bars(stats, scale), strict=True):
        if not s.n:
            continue
        err = 0.0 if math.isnan(err) else err
        value, x = bar.get_height(), bar.get_x() + bar.get_width() / 2
        text = f"{value:.1f}" + (" n=1" if s.n == 1 else "")
        inside = value - err >= INSIDE_FROM * top
        ax.annotate(
            text,
            (x, value - err if inside else value + err),
            textcoords="offset points",
            xytext=(0, -3 if inside else 3),
            ha="center",
            va="top" if inside else "bottom",
            rotation=90,
            fontsize=LABEL_PT,
            color="white" if inside else "black",
        )


def _save(fig: Any, path: Path) -> Path:
    return atomic_write_figure(fig, path, dpi=100)  # rendered in memory, then renamed into place


def _scale(run: Run) -> tuple[float, str]:
    return (1.0, "test PSNR (dB)") if run.config.task == "unshuffle" else (100.0, "test accuracy (%)")


def sweep(runs: list[Run], x: str, out: Path, name: str) -> list[Path]:
    """Metric vs ``x`` (depth / width / kernel) with one line per learn mode (Figs. 2, 4, 5, 10, B.4, B.5)."""
    found = [
        g
        for g in groups(runs, ("learn", x), lambda r: r.config.adv == "none")
        if len({v for (_, v) in g}) >= 2
    ]
    if not found:
        return []
    fig, axes = _figure(len(found))
    for ax, g in zip(axes, found, strict=True):
        first = next(iter(g.values()))[0]
        scale, label = _scale(first)
        drawn: list[Stat] = []
        for learn in LEARN_MODES:
            xs = sorted(v for (lm, v) in g if lm == learn and v is not None)
            if not xs:
                continue
            stats = [metric_stat(g[(learn, v)]) for v in xs]
            drawn += stats
            color, marker = LEARN_STYLE.get(learn, OTHER_STYLE)
            ys = [s.mean * scale for s in stats]
            ax.errorbar(
                xs, ys, yerr=error_bars(stats, scale), label=learn, color=color, marker=marker, capsize=3
            )
            _mark_single(ax, xs, ys, stats)
        _sweep_ticks(ax, sorted({v for (_, v) in g if v is not None}))
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        _set_title(ax, f"{describe(first, ('learn', x))}, {seeds_text(drawn)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return [_save(fig, out / f"{name}.png")]


def _sweep_ticks(ax: Any, values: list[Any], most: int = 10) -> None:
    """Ticks at the swept values (64 and 128, not 72, 80, …), or whole numbers where there are many."""
    if len(values) <= most:
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # depth / width / kernel are whole numbers


def _plain_chans(run: Run) -> bool:
    """A classifier that learns only its channel mixing, trained without adversarial examples."""
    return run.config.task == "classify" and run.config.learn == "chans" and run.config.adv == "none"


def filter_bars(runs: list[Run], out: Path) -> list[Path]:
    """Fig. 3: chans accuracy per frozen bank (random / same / box / identity), full as a reference line."""
    order = ("random", "same", "box", "identity")
    found = [g for g in groups(runs, ("filters",), _plain_chans) if sum((f,) in g for f in order) >= 2]
    if not found:
        return []
    fig, axes = _figure(len(found))
    for ax, g in zip(axes, found, strict=True):
        first = next(iter(g.values()))[0]
        kinds = [f for f in order if (f,) in g]
        stats = [metric_stat(g[(f,)]) for f in kinds]
        ax.set_ylim(0, 100)  # bars start at 0: their heights compare honestly
        bars = ax.bar(
            kinds, [s.mean * 100 for s in stats], yerr=error_bars(stats, 100), color="tab:orange", capsize=3
        )
        _bar_labels(ax, bars, stats, 100)
        full = [
            r
            for r in runs
            if r.config.learn == "full" and r.key(("learn", "seed")) == first.key(("learn", "seed"))
        ]
        if full:
            ax.axhline(metric_stat(full).mean * 100, color="tab:blue", ls="--", label="full (learned)")
        ax.set_ylabel("test accuracy (%)")
        _set_title(ax, f"{describe(first, ('filters',))}, chans, {seeds_text(stats)}")
    _figure_legend(fig, axes)
    return [_save(fig, out / "fig3-filter-structure.png")]


def _figure_legend(fig: Any, axes: Sequence[Any], ncols: int = 4) -> None:
    """One legend below the panels for every label any panel draws (in the order first drawn)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=ncols, fontsize=9)


def attack_bars(runs: list[Run], out: Path, eps: float = 1 / 255) -> list[Path]:
    """Fig. 6: clean and robust accuracy at ``eps`` under each FGSM / PGD-2 attack run (named exactly),
    per learn mode, one panel per training regime; error bars: std over seeds."""
    found = [g for g in groups(runs, ("learn",), lambda r: r.config.task == "classify" and r.attacks != [])]
    found = [
        g
        for g in found
        if any(e == eps for _, e in attack_points([r for rs in g.values() for r in rs], GRADIENT_ATTACKS))
    ]
    if not found:
        return []
    fig, axes = _figure(len(found))
    for ax, g in zip(axes, found, strict=True):
        attacked = [r for rs in g.values() for r in rs]
        attacks = [a for a, e in attack_points(attacked, GRADIENT_ATTACKS, pgd_steps=2) if e == eps]
        kinds: list[str | None] = [None, *attacks]
        learns = [lm for lm in LEARN_MODES if (lm,) in g]
        width = 0.8 / len(kinds)
        ax.set_ylim(0, 100)  # bars start at 0 (the gaps are a few points: the value labels give them)
        drawn: list[Stat] = []
        for i, attack in enumerate(kinds):
            stats = [
                attack_clean_stat(g[(lm,)], eps) if attack is None else robust_stat(g[(lm,)], attack, eps)[0]
                for lm in learns
            ]
            drawn += stats
            bars = ax.bar(
                [j + i * width for j in range(len(learns))],
                [s.mean * 100 if s.n else 0.0 for s in stats],
                width,
                yerr=error_bars(stats, 100),
                capsize=2,
                label="clean" if attack is None else attack,
            )
            _bar_labels(ax, bars, stats, 100)
        ax.set_xticks([j + width * (len(kinds) - 1) / 2 for j in range(len(learns))], learns)
        ax.set_ylabel("accuracy (%) on the attacked sample")
        setting = describe(g[(learns[0],)][0], ("learn",))
        _set_title(ax, f"{setting}, ε = {eps * 255:g}/255, {seeds_text(drawn)}")
    _figure_legend(fig, axes)
    return [_save(fig, out / "fig6-adversarial.png")]


EPS_SCALE = {"base": 2, "linthresh": 1, "linscale": 0.5}  # ε 0, 1, 2, 4, 8 (× 1/255) evenly spaced:
# linscale 1 - 1/base gives 0…1 the width of one doubling


def _model_lines(attacked: list[Run]) -> dict[str, dict[str, list[Run]]]:
    """The attacked runs per setting (dataset, arch, sizes, budget) and, within it, per model (learn mode,
    bank, adversarial training): one line of Fig. 7 each."""
    lines: dict[str, dict[str, list[Run]]] = {}
    for r in attacked:
        model = f"{r.config.learn}, {parse_bank(r.config.filters).label}" + (
            f", {r.config.adv}-trained" if r.config.adv != "none" else ""
        )
        setting = describe(r, ("learn", "filters", "adv"))
        lines.setdefault(setting, {}).setdefault(model, []).append(r)
    return {k: dict(sorted(v.items())) for k, v in sorted(lines.items())}


def robust_vs_eps(runs: list[Run], out: Path) -> list[Path]:
    """Fig. 7: robust accuracy vs ε, one line per model (setting, learn mode, bank and σ), one panel per
    attack (named exactly: steps, step size, random start); error bars: std over seeds. ε in units of
    1/255 on a symmetric-log axis (0, 1, 2, 4, 8 evenly spaced), ticks at the attacked ε."""
    attacked = [r for r in runs if r.config.task == "classify" and len({a["eps"] for a in r.attacks}) >= 2]
    names = sorted({a for a, _ in attack_points(attacked, tuple(ATTACKS))})
    if not names:
        return []
    fig, axes = _figure(len(names))
    lines = _model_lines(attacked)
    handles: dict[str, list[tuple[Any, str]]] = {}
    for ax, attack in zip(axes, names, strict=True):
        ticks: set[float] = {0.0}
        for setting, models in lines.items():
            for model, rs in models.items():
                eps = sorted({e for a, e in attack_points(rs, tuple(ATTACKS)) if a == attack})
                if not eps:
                    continue
                stats = [attack_clean_stat(rs, eps[0]), *[robust_stat(rs, attack, e)[0] for e in eps]]
                xs = [0.0, *[e * 255 for e in eps]]
                ys = [s.mean * 100 for s in stats]
                line = ax.errorbar(xs, ys, yerr=error_bars(stats, 100), marker="o", capsize=2)
                _mark_single(ax, xs, ys, stats)
                ticks.update(xs)
                if ax is axes[0]:
                    handles.setdefault(setting, []).append((line, f"{model}, n={stats[0].n}"))
        ax.set_xscale("symlog", **EPS_SCALE)
        ax.set_xticks(sorted(ticks), [f"{t:g}" for t in sorted(ticks)])
        ax.minorticks_off()
        ax.set_xlabel("ε (× 1/255)")
        ax.set_ylabel("robust accuracy (%)")
        _set_title(ax, attack)
        ax.grid(alpha=0.3)
    _eps_legend(fig, handles)
    datasets = sorted({r.config.dataset for r in attacked})
    fig.suptitle(
        f"{', '.join(datasets)}: robust accuracy vs ε for {len(lines)} setting(s) (legend headings); "
        "mean ± std over n seeds (n per line)",
        fontsize=10,
    )
    return [_save(fig, out / "fig7-robust-vs-eps.png")]


def _eps_legend(fig: Any, handles: dict[str, list[tuple[Any, str]]]) -> None:
    """Fig. 7's legend below the panels: each setting a heading over its models' lines; two settings side
    by side (a column each), more one under the other."""
    blank = Patch(visible=False)
    columns = [[(blank, setting), *entries] for setting, entries in handles.items()]
    rows = max((len(c) for c in columns), default=0)
    side = len(columns) <= 2
    items = [
        item
        for c in columns
        for item in (c + [(blank, "")] * (rows - len(c)) if side else c)  # pad: a column each
    ]
    if not items:
        return
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.2 * (rows if side else len(items)))  # the panels keep their height
    legend = fig.legend(
        [h for h, _ in items],
        [label for _, label in items],
        loc="outside lower center",
        ncols=len(columns) if side else 1,
        fontsize=8,
    )
    for text in legend.get_texts():
        if text.get_text() in handles:
            text.set_fontweight("bold")


def envelopes(
    runs: list[Run], out: Path, banks: list[Any], pad: int, level: float, choice: Fig9Choice | None = None
) -> list[Path]:
    """Figs. 1 / 8: fresh random vs smoothed banks (``banks``: DrawnSpectrum list); Fig. 9: the layers of
    one learned (full) and one frozen (chans) ConvMixer checkpoint among the runs, those of ``choice``
    (default: :func:`fig9.fig9_runs`' rule), each titled with its run and why it was taken."""
    paths = [Path(plot_drawn(banks, out / "fig1-fig8-envelopes.png", pad=pad, level=level))]
    choice = choice or fig9_runs(runs)
    for learn, run in (("full", choice.full), ("chans", choice.chans)):
        if run is not None:
            spectra = spectra_banks.checkpoint_spectra(run.path, pad=pad, level=level)
            name = f"{checkpoint_name(spectra.checkpoint)} ({choice.title(learn)})"
            target = out / f"fig9-envelopes-{learn}.png"
            paths.append(Path(plot_checkpoint(spectra, target, pad=pad, level=level, name=name)))
    return paths


def reconstruction_grids(runs: list[Run], out: Path, limit: int = 6) -> list[Path]:
    """Figs. 11 / B.2 / B.3: the reconstruction grids the un-shuffle runs wrote (copied)."""
    # One grid per (dataset, learn mode): the run with the best PSNR, so a report over several recipes
    # shows each dataset's full and chans reconstructions rather than the first few runs found.
    best: dict[tuple[str, str], Run] = {}
    for run in runs:
        if run.grid is None:
            continue
        slot = (run.config.dataset, run.config.learn)
        if slot not in best or (run.metric or -1.0) > (best[slot].metric or -1.0):
            best[slot] = run
    paths = []
    for (dataset, learn), run in sorted(best.items())[:limit]:
        target = out / f"grid-{dataset}-{learn}-{run.path.parent.name}-{run.path.name}.png"
        try:
            image = read_bytes(run.grid)  # a regular file only: a FIFO or device here cannot block
        except OSError:
            continue  # went missing or is not a file since the runs were read: no figure, not a failure
        atomic_write_bytes(target, image)
        paths.append(target)
    return paths


__all__ = ["attack_bars", "envelopes", "filter_bars", "reconstruction_grids", "robust_vs_eps", "sweep"]
