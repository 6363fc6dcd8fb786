"""PNG figures of unit-energy spectral envelopes: dB re. a flat spectrum of the same energy (|H| = 1), zero
frequency centred, axes in cycles/sample, the coverage contour at the level."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure  # no pyplot: no global figure state

from ...config.runfiles import MODEL_FILE
from ...safefiles import atomic_write_figure
from .banks import CheckpointSpectra, DrawnSpectrum
from .envelope import frequencies

FLOOR_DB = -30.0  # the lowest the colour scale goes, relative to its top: deeper nulls share one colour
MAX_COLUMNS = 8
STEP_DB = 5.0  # the colour scale's bottom is a multiple of this


COLOUR_LABEL = "dB re. a flat spectrum\n(filters at unit energy)"


def colour_floor(lowest_db: float, *, floor: float = FLOOR_DB, step: float = STEP_DB) -> float:
    """The colour scale's bottom for panels whose lowest value is ``lowest_db`` (dB re. the scale's top,
    ≤ 0): that value rounded down to a multiple of ``step``, at least one step below 0 and never below
    ``floor``. So envelopes spanning 0 to −10 dB get a 0 to −10 dB scale, not a −30 dB one that leaves them
    one colour."""
    bottom = math.floor(lowest_db / step) * step
    return max(floor, min(bottom, -step))


def colour_range(lowest_db: float, highest_db: float, *, step: float = STEP_DB) -> tuple[float, float]:
    """(bottom, top) of the colour scale for panels spanning ``lowest_db`` … ``highest_db`` (dB re. a flat
    spectrum): the top is the highest value rounded up to a multiple of ``step``, the bottom
    :func:`colour_floor` below it."""
    top = math.ceil(highest_db / step) * step
    return top + colour_floor(lowest_db - top, step=step), top


def _db(env: torch.Tensor) -> torch.Tensor:
    """Magnitude in dB re. a flat spectrum (|H| = 1), floored far below any colour scale's bottom."""
    return 20 * torch.log10(env.double().clamp_min(1e-12))


def plot_grid(
    rows: Sequence[Sequence[tuple[str, torch.Tensor]]],
    out: str | Path,
    *,
    title: str = "",
    level: float | None = None,
) -> Path:
    """Write one panel per ``(title, unit-energy envelope)``, one figure row per entry of ``rows``, with a
    shared colour bar (dB re. a flat spectrum) and, with ``level``, the coverage contour at |H| = level.
    Returns the path."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig = Figure(figsize=(2.6 * n_cols + 1.0, 2.6 * n_rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    envs = [env for row in rows for _, env in row]
    vmin, vmax = colour_range(min(float(_db(e).min()) for e in envs), max(float(_db(e).max()) for e in envs))
    contour = 20 * math.log10(level) if level is not None else None
    image = None
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(row):
                ax.set_axis_off()
                continue
            name, env = row[c]
            f = frequencies(env.shape[-1])
            half = 0.5 / env.shape[-1]
            extent = (float(f[0]) - half, float(f[-1]) + half, float(f[0]) - half, float(f[-1]) + half)
            db = _db(env).clamp_min(vmin).numpy()
            image = ax.imshow(db, origin="lower", extent=extent, cmap="magma", vmin=vmin, vmax=vmax)
            if contour is not None and db.min() < contour < db.max():
                ax.contour(
                    db,
                    levels=[contour],
                    colors="white",
                    linewidths=0.6,
                    linestyles="solid",
                    extent=extent,
                    origin="lower",
                )
            ax.set_title(name, fontsize=9)
            ax.set_xticks([-0.5, 0, 0.5])
            ax.set_yticks([-0.5, 0, 0.5])
            ax.tick_params(labelsize=8)
            if r == n_rows - 1:
                ax.set_xlabel("fx (cycles/sample)", fontsize=8)
            if c == 0:
                ax.set_ylabel("fy (cycles/sample)", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label=COLOUR_LABEL, shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=10)
    return atomic_write_figure(fig, out, dpi=120)  # rendered in memory, then renamed into place


def plot_drawn(spectra: Sequence[DrawnSpectrum], out: str | Path, *, pad: int, level: float) -> Path:
    """One row per filter bank spec, one panel per N (Fig. 1 / Fig. 8). A panel shows the first draw's
    envelope and prints that draw's coverage (the one its contour encloses), then the mean over the draws."""
    rows: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for s in spectra:
        label = s.bank.label  # the name and every parameter: "smooth σ=1", "random"
        panel = f"{label}, n={s.n}, k={s.kernel}\n{drawn_coverage_text(s)}"
        rows.setdefault(label, []).append((panel, s.first.envelope))
    return plot_grid(list(rows.values()), out, title=f"spectral envelopes ({_cut(pad, level)})", level=level)


def _cut(pad: int, level: float) -> str:
    """``pad 512, white: coverage level |H| = 2 × flat (+6.0 dB)`` — what a figure's title says of its cut."""
    return f"pad {pad}; white: coverage level |H| = {level:g} × flat ({20 * math.log10(level):+.1f} dB)"


def drawn_coverage_text(s: DrawnSpectrum) -> str:
    """``draw 1: coverage 0.314`` — the shown envelope's own coverage — and, over several draws, their mean
    (``mean of 32: 0.297 ± 0.061``) on the next line."""
    text = f"draw 1: coverage {s.first.coverage:.3f}" if s.draws > 1 else f"coverage {s.first.coverage:.3f}"
    if s.draws > 1:
        spread = f" ± {s.coverage_std:.3f}" if s.coverage_std is not None else ""
        text += f"\nmean of {s.draws}: {s.coverage:.3f}{spread}"
    return text


def checkpoint_name(checkpoint: str | Path) -> str:
    """What a figure calls a checkpoint: its run directory's ``sweep/run`` names for a run's
    ``model.safetensors`` (every run's file has that name), else the file's name."""
    path = Path(checkpoint)
    if path.name == MODEL_FILE:
        return "/".join(p.name for p in (path.parent.parent, path.parent) if p.name)
    return path.name


def plot_checkpoint(
    spectra: CheckpointSpectra, out: str | Path, *, pad: int, level: float, name: str | None = None
) -> Path:
    """One panel per depthwise layer (Fig. 9), wrapped at MAX_COLUMNS panels a row; titled ``name``
    (default: :func:`checkpoint_name` of the checkpoint)."""
    panels = [
        (
            f"layer {x.layer}, n={x.spectrum.n}, k={x.spectrum.kernel}\ncoverage {x.spectrum.coverage:.3f}",
            x.spectrum.envelope,
        )
        for x in spectra.layers
    ]
    rows = [panels[i : i + MAX_COLUMNS] for i in range(0, len(panels), MAX_COLUMNS)]
    title = f"{name or checkpoint_name(spectra.checkpoint)}: {spectra.arch}, learn {spectra.learn}, filters {spectra.filters}"
    return plot_grid(rows, out, title=f"{title}\n({_cut(pad, level)})", level=level)
