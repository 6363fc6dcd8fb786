"""The picture of Figs. 11 / B.2 / B.3: rows of ground truth, scrambled input and reconstruction(s)."""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure  # no pyplot: no global figure state, no display

from ...safefiles import atomic_write_figure


def save_grid(
    path: str | Path,
    truth: torch.Tensor,
    scrambled: torch.Tensor,
    reconstructions: list[tuple[str, torch.Tensor]],
    *,
    title: str | None = None,
) -> Path:
    """Write a PNG with one row per kind (ground truth, scrambled, then each labelled reconstruction) and
    one column per image; tensors are (k, C, H, W) in [0, 1]. Returns the path."""
    rows = [("ground truth", truth), ("scrambled", scrambled), *reconstructions]
    k = truth.shape[0]
    fig = Figure(figsize=(1.2 * k + 1.2, 1.25 * len(rows)))
    axes = fig.subplots(len(rows), k, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(k):
            ax = axes[r][c]
            image = images[c].clamp(0, 1)
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return atomic_write_figure(fig, path, dpi=100)  # in memory, then renamed into place
