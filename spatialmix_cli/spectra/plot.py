"""PNG figures of spectral envelopes: log magnitude, zero frequency centred, axes in cycles/sample."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from ..safefiles import atomic_write_figure
from .banks import CheckpointSpectra, DrawnSpectrum
from .envelope import frequencies

FLOOR_DB = -60.0  # the colour scale's bottom, relative to each panel's peak
MAX_COLUMNS = 8


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
            image = ax.imshow(db, origin="lower", extent=extent, cmap="magma", vmin=FLOOR_DB, vmax=0.0)
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
    """One row per filter bank spec, one panel per N (Fig. 1 / Fig. 8)."""
    rows: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for s in spectra:
        label = s.bank.label  # the name and every parameter: "smooth σ=1", "random"
        panel = f"{label}, n={s.n}, k={s.kernel}\ncoverage {s.coverage:.3f}"
        rows.setdefault(label, []).append((panel, s.first.envelope))
    title = f"spectral envelopes (pad {pad}, coverage at {threshold:g} × peak)"
    return plot_grid(list(rows.values()), out, title=title, threshold=threshold)


def plot_checkpoint(spectra: CheckpointSpectra, out: str | Path, *, pad: int, threshold: float) -> Path:
    """One panel per depthwise layer (Fig. 9), wrapped at MAX_COLUMNS panels a row."""
    panels = [
        (f"layer {x.layer}, n={x.spectrum.n}, k={x.spectrum.kernel}\ncoverage {x.spectrum.coverage:.3f}",
         x.spectrum.envelope)
        for x in spectra.layers
    ]  # fmt: skip
    rows = [panels[i : i + MAX_COLUMNS] for i in range(0, len(panels), MAX_COLUMNS)]
    title = (
        f"{Path(spectra.checkpoint).name}: {spectra.arch}, learn {spectra.learn}, filters {spectra.filters}"
    )
    return plot_grid(rows, out, title=f"{title} (pad {pad})", threshold=threshold)
