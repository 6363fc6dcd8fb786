"""One matplotlib figure per paper figure type that the runs cover. Each function returns the written
PNG paths (none when the runs do not cover that figure)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global figure state
from matplotlib.ticker import MaxNLocator

from ...attacks.registry import ATTACKS, GRADIENT_ATTACKS
from ...config.banks import parse_bank
from ...layers.learn import LEARN_MODES
from ...safefiles import atomic_write_bytes, atomic_write_figure, read_bytes
from ...store.rundir import has_weights
from ..spectra import banks as spectra_banks
from ..spectra.plot import plot_checkpoint, plot_drawn
from .collect import Run
from .compare import Stat, attack_clean_stat, attack_points, describe, groups, metric_stat, robust_stat

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


def panel_title(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` wrapped onto lines of at most ``width`` characters (at word breaks), so a panel's title
    neither runs off the figure's edge nor into its neighbour's."""
    cut = text.rfind(" (")  # keep a trailing "(4000 img × 3 ep)" on one line: no-break spaces inside it
    kept = text if cut < 0 else text[:cut] + " " + text[cut + 1 :].replace(" ", "\u00a0")
    lines = textwrap.wrap(kept, width, break_on_hyphens=False)
    return "\n".join(lines).replace("\u00a0", " ") or text


def error_bars(stats: Sequence[Stat], scale: float = 1.0) -> list[float]:
    """Half-lengths of the error bars (std over seeds × ``scale``); NaN, which matplotlib draws as no bar
    at all, where a cell has a single run (n = 1 has no spread: a zero-width bar would claim one)."""
    return [s.std * scale if s.std is not None and s.n > 1 else math.nan for s in stats]


def _mark_single(ax: Any, xs: Sequence[float], ys: Sequence[float], stats: Sequence[Stat]) -> None:
    """Write ``n=1`` beside every point that is one run (it has no error bar)."""
    for x, y, s in zip(xs, ys, stats, strict=True):
        if s.n == 1:
            ax.annotate("n=1", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="0.3")


def _bar_labels(ax: Any, bars: Any, stats: Sequence[Stat]) -> None:
    """Each bar's value on top of it, with ``n=1`` where it is a single run (drawn without an error bar)."""
    labels = [
        f"{b.get_height():.1f}" + ("\nn=1" if s.n == 1 else "") if s.n else ""
        for b, s in zip(bars, stats, strict=True)
    ]
    ax.bar_label(bars, labels, fontsize=6, padding=2)


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
        for learn in LEARN_MODES:
            xs = sorted(v for (lm, v) in g if lm == learn and v is not None)
            if not xs:
                continue
            stats = [metric_stat(g[(learn, v)]) for v in xs]
            color, marker = LEARN_STYLE.get(learn, OTHER_STYLE)
            ys = [s.mean * scale for s in stats]
            ax.errorbar(
                xs, ys, yerr=error_bars(stats, scale), label=learn, color=color, marker=marker, capsize=3
            )
            _mark_single(ax, xs, ys, stats)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # depth / width / kernel are whole numbers
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.set_title(panel_title(describe(first, ("learn", x))), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return [_save(fig, out / f"{name}.png")]


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
        bars = ax.bar(
            kinds, [s.mean * 100 for s in stats], yerr=error_bars(stats, 100), color="tab:orange", capsize=3
        )
        _bar_labels(ax, bars, stats)
        full = [
            r
            for r in runs
            if r.config.learn == "full" and r.key(("learn", "seed")) == first.key(("learn", "seed"))
        ]
        if full:
            ax.axhline(metric_stat(full).mean * 100, color="tab:blue", ls="--", label="full (learned)")
            ax.legend(fontsize=8)
        ax.set_ylim(0, 105)  # bars start at 0: their heights compare honestly
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(panel_title(describe(first, ("filters",)) + ", chans"), fontsize=9)
    return [_save(fig, out / "fig3-filter-structure.png")]


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
        for i, attack in enumerate(kinds):
            stats = [
                attack_clean_stat(g[(lm,)], eps) if attack is None else robust_stat(g[(lm,)], attack, eps)[0]
                for lm in learns
            ]
            vals = [s.mean * 100 if s.n else 0.0 for s in stats]
            bars = ax.bar(
                [j + i * width for j in range(len(learns))],
                vals,
                width,
                yerr=error_bars(stats, 100),
                capsize=2,
                label="clean" if attack is None else attack,
            )
            _bar_labels(ax, bars, stats)
        ax.set_xticks([j + width * (len(kinds) - 1) / 2 for j in range(len(learns))], learns)
        ax.set_ylim(
            0, 118
        )  # bars start at 0 (the gaps are a few points: the value labels give them); room for the legend
        ax.set_ylabel("accuracy (%) on the attacked sample")
        title = panel_title(describe(g[(learns[0],)][0], ("learn",)))
        ax.set_title(f"{title}\nε = {eps * 255:g}/255", fontsize=8)
        ax.legend(fontsize=7, loc="upper center", ncols=len(kinds))
    return [_save(fig, out / "fig6-adversarial.png")]


def robust_vs_eps(runs: list[Run], out: Path) -> list[Path]:
    """Fig. 7: robust accuracy vs ε, one line per model (setting, learn mode, bank and σ), one panel per
    attack (named exactly: steps, step size, random start); error bars: std over seeds."""
    attacked = [r for r in runs if r.config.task == "classify" and len({a["eps"] for a in r.attacks}) >= 2]
    names = sorted({a for a, _ in attack_points(attacked, tuple(ATTACKS))})
    if not names:
        return []
    fig, axes = _figure(len(names))
    for ax, attack in zip(axes, names, strict=True):
        by_model: dict[str, list[Run]] = {}
        for r in attacked:
            label = f"{r.config.learn}, {parse_bank(r.config.filters).label}" + (
                f", {r.config.adv}-trained" if r.config.adv != "none" else ""
            )
            by_model.setdefault(f"{describe(r, ('learn', 'filters', 'adv'))}: {label}", []).append(r)
        short = [label.split(": ", 1)[1] for label in by_model]  # the model alone, where that names one line
        for label, rs in sorted(by_model.items()):
            eps = sorted({e for a, e in attack_points(rs, tuple(ATTACKS)) if a == attack})
            if not eps:
                continue
            stats = [attack_clean_stat(rs, eps[0]), *[robust_stat(rs, attack, e)[0] for e in eps]]
            xs = [0.0, *[e * 255 for e in eps]]
            ys = [s.mean * 100 for s in stats]
            model = label.split(": ", 1)[1]
            name = model if short.count(model) == 1 else f"{model} ({label.split(': ', 1)[0]})"
            ax.errorbar(xs, ys, yerr=error_bars(stats, 100), marker="o", capsize=2, label=name)
            _mark_single(ax, xs, ys, stats)
        ax.set_xlabel("ε (× 1/255)")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_title(panel_title(attack), fontsize=9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()  # every panel draws the same models
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7)
    return [_save(fig, out / "fig7-robust-vs-eps.png")]


def envelopes(runs: list[Run], out: Path, banks: list[Any], pad: int, level: float) -> list[Path]:
    """Figs. 1 / 8: fresh random vs smoothed banks (``banks``: DrawnSpectrum list); Fig. 9: the layers of
    one learned (full) and one frozen (chans) ConvMixer checkpoint among the runs."""
    paths = [Path(plot_drawn(banks, out / "fig1-fig8-envelopes.png", pad=pad, level=level))]
    # Fig. 9 contrasts learned filters with frozen *random* ones: a chans run with random banks, and the
    # full run of the same setting and seed where there is one (else any full ConvMixer run).
    with_weights = [
        r
        for r in runs
        if r.config.task == "classify"
        and r.config.arch.startswith("convmixer")
        and r.config.filters == "random"
        and has_weights(r.path)
    ]
    chans = [r for r in with_weights if r.config.learn == "chans"]
    full = [r for r in with_weights if r.config.learn == "full"]
    if chans:
        twin = [r for r in full if r.key(("learn",)) == chans[0].key(("learn",))]
        full = twin or full
    for learn, candidates in (("full", full), ("chans", chans)):
        if candidates:
            spectra = spectra_banks.checkpoint_spectra(candidates[0].path, pad=pad, level=level)
            paths.append(
                Path(plot_checkpoint(spectra, out / f"fig9-envelopes-{learn}.png", pad=pad, level=level))
            )
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
