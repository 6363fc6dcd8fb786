"""PNG figures of spectral envelopes: log magnitude, zero frequency centred, axes in cycles/sample."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from ..rundir import MODEL_FILE
from ..safefiles import atomic_write_figure
from .banks import CheckpointSpectra, DrawnSpectrum
from .envelope import frequencies

FLOOR_DB = -60.0  # the lowest the colour scale goes, relative to each panel's peak
MAX_COLUMNS = 8
STEP_DB = 5.0  # the colour scale's bottom is a multiple of this


def colour_floor(lowest_db: float, *, floor: float = FLOOR_DB, step: float = STEP_DB) -> float:
    """The colour scale's bottom for panels whose lowest value is ``lowest_db`` (dB re. peak, ≤ 0): that
    value rounded down to a multiple of ``step``, at least one step below 0 and never below ``floor``. So
    envelopes spanning 0 to −10 dB get a 0 to −10 dB scale, not a −60 dB one that leaves them one colour."""
    bottom = math.floor(lowest_db / step) * step
    return max(floor, min(bottom, -step))


def _db(env: torch.Tensor) -> torch.Tensor:
    """Magnitude in dB relative to the envelope's own peak, floored at FLOOR_DB."""
    rel = env.double() / env.max().clamp_min(1e-30)
    return (20 * torch.log10(rel + 1e-12)).clamp_min(FLOOR_DB)


def plot_grid(
    rows: Sequence[Sequence[tuple[str, torch.Tensor]]],
    out: str | Path,
    *,
    title: str = "",
    threshold: float | None = None,
) -> Path:
    """Write one panel per ``(title, envelope)``, one figure row per entry of ``rows``, with a shared
    colour bar (dB re. each panel's peak) and, with ``threshold``, the coverage contour. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: keeps the CLI's start fast
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig = Figure(figsize=(2.6 * n_cols + 1.0, 2.6 * n_rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    vmin = colour_floor(min(float(_db(env).min()) for row in rows for _, env in row))
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
            db = _db(env).numpy()
            image = ax.imshow(db, origin="lower", extent=extent, cmap="magma", vmin=vmin, vmax=0.0)
            level = 20 * math.log10(threshold) if threshold is not None else None
            if level is not None and db.min() < level < db.max():
                ax.contour(db, levels=[level], colors="white", linewidths=0.6, linestyles="solid",
                           extent=extent, origin="lower")  # fmt: skip
            ax.set_title(name, fontsize=9)
            ax.set_xticks([-0.5, 0, 0.5])
            ax.set_yticks([-0.5, 0, 0.5])
            ax.tick_params(labelsize=7)
            if r == n_rows - 1:
                ax.set_xlabel("fx (cycles/sample)", fontsize=8)
            if c == 0:
                ax.set_ylabel("fy (cycles/sample)", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="dB re. panel peak", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=10)
    return atomic_write_figure(fig, out, dpi=120)  # rendered in memory, then renamed into place


def plot_drawn(spectra: Sequence[DrawnSpectrum], out: str | Path, *, pad: int, threshold: float) -> Path:
    """One row per filter bank spec, one panel per N (Fig. 1 / Fig. 8). A panel shows the first draw's
    envelope and prints that draw's coverage (the one its contour encloses), then the mean over the draws."""
    rows: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for s in spectra:
        label = s.bank.label  # the name and every parameter: "smooth σ=1", "random"
        panel = f"{label}, n={s.n}, k={s.kernel}\n{drawn_coverage_text(s)}"
        rows.setdefault(label, []).append((panel, s.first.envelope))
    title = f"spectral envelopes (pad {pad}, coverage at {threshold:g} × peak)"
    return plot_grid(list(rows.values()), out, title=title, threshold=threshold)


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
    spectra: CheckpointSpectra, out: str | Path, *, pad: int, threshold: float, name: str | None = None
) -> Path:
    """One panel per depthwise layer (Fig. 9), wrapped at MAX_COLUMNS panels a row; titled ``name``
    (default: :func:`checkpoint_name` of the checkpoint)."""
    panels = [
        (f"layer {x.layer}, n={x.spectrum.n}, k={x.spectrum.kernel}\ncoverage {x.spectrum.coverage:.3f}",
         x.spectrum.envelope)
        for x in spectra.layers
    ]  # fmt: skip
    rows = [panels[i : i + MAX_COLUMNS] for i in range(0, len(panels), MAX_COLUMNS)]
    title = f"{name or checkpoint_name(spectra.checkpoint)}: {spectra.arch}, learn {spectra.learn}, filters {spectra.filters}"
    return plot_grid(rows, out, title=f"{title} (pad {pad})", threshold=threshold)
