"""The pipeline of `spatialmix unshuffle`: train un-shuffle points, then score each finished checkpoint and
save its scores and reconstruction grid; or re-evaluate checkpoints side by side in one grid."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.unshuffle.grid import save_grid
from ..analysis.unshuffle.scores import (
    Examples,
    UnshuffleScores,
    checkpoint_config,
    save_scores,
    score_checkpoint,
)
from ..config.recipes import Point
from ..config.runfiles import GRID_FILE
from ..config.train import UNSHUFFLE_ARCH, TrainConfig
from ..errors import ConfigError
from ..safefiles import check_target
from ..store.checkpoint import Checkpoint, checkpoint_file, load_checkpoint
from ..store.points import listing, resolve_points
from ..training.state import TrainResult
from .train import Training

Note = Callable[[str], None]  # where a line for the user goes (the CLI: stderr)


@dataclass
class Scored:
    """One scored checkpoint: its row name, scores and grid; ``result`` when it was trained now."""

    name: str
    scores: UnshuffleScores
    grid: Path
    run_dir: Path | None = None
    result: TrainResult | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {**self.scores.to_dict()}
        if self.result is not None:
            out["run_dir"] = str(self.run_dir)
        out["grid"] = str(self.grid)
        if self.result is not None:
            out.update(seconds=self.result.seconds, skipped=self.result.skipped)
        return out


def unshuffle_points(
    recipe: Path | None,
    overrides: dict[str, Any],
    out: Path | None,
    *,
    resume: bool,
    index: int | None,
    check: bool = True,
) -> list[Point]:
    """The un-shuffle runs asked for (``resolve_points`` on an un-shuffle base); a recipe whose points are
    not un-shuffle runs is refused. ``check``: build each point's model on the meta device."""
    base = TrainConfig(task="unshuffle", arch=UNSHUFFLE_ARCH)
    points = resolve_points(recipe, overrides, out, resume, index, base=base, check=check)
    if any(p.config.task != "unshuffle" for p in points):
        raise ConfigError(
            f"{recipe} is not an un-shuffle recipe (its base needs task: unshuffle and "
            f"arch: {UNSHUFFLE_ARCH}); train it with `spatialmix train --recipe`"
        )
    return points


def unshuffle_listing(
    recipe: Path | None, overrides: dict[str, Any], out: Path | None, *, resume: bool, index: int | None
) -> list[dict[str, Any]]:
    """``unshuffle --list``: the runs asked for and their training status, read-only
    (:func:`~spatialmix_cli.store.points.listing`); nothing is trained or scored."""
    return listing(unshuffle_points(recipe, overrides, out, resume=resume, index=index, check=False))


def train_and_score(
    recipe: Path | None,
    overrides: dict[str, Any],
    out: Path | None,
    *,
    index: int | None,
    grid: Path | None,
    training: Training,
    note: Note,
) -> Iterator[Scored]:
    """Train the asked-for runs (``resolve_points`` on an un-shuffle base) as ``training`` says, then
    score, save and draw each finished one that kept its weights (``grid``: where the one run's grid
    goes; default ``grid.png`` in its run dir)."""
    points = unshuffle_points(recipe, overrides, out, resume=training.resume, index=index)
    if grid is not None and len(points) > 1:
        raise ConfigError("--grid names one file; a recipe writes one grid per run directory")
    for point, result in training.finished(points, "scores"):
        ckpt = load_checkpoint(result.checkpoint)
        scores, examples = score_checkpoint(ckpt, data_dir=point.config.data_dir)
        save_scores(point.run_dir, scores)
        path = write_grid(grid or point.run_dir / GRID_FILE, examples, [(scores, examples)], note)
        yield Scored(point.name or str(point.run_dir), scores, path, point.run_dir, result)


def evaluate_checkpoints(
    paths: list[Path], grid: Path | None, data_dir: str | None, download: bool, note: Note
) -> list[Scored]:
    """Score checkpoints (or run dirs) on data found where the user says (or the defaults): what a
    checkpoint stores about its data is a folder to look in, never one to write or download into."""
    ckpts = [_load(p) for p in paths]
    configs = [checkpoint_config(c) for c in ckpts]  # refuses classification checkpoints
    keys = {(c.dataset, c.perm_seed, c.test_subset) for c in configs}
    if len(keys) > 1:
        raise ConfigError(
            "checkpoints to compare in one grid need the same dataset, permutation seed and test set; "
            f"got {sorted(keys, key=str)}"
        )
    default = ckpts[0].path.parent / GRID_FILE if len(ckpts) == 1 else Path(GRID_FILE)
    check_target(grid or default)  # a link there is refused before the scoring, not after
    scored = [score_checkpoint(c, data_dir=data_dir, download=download) for c in ckpts]
    path = write_grid(grid or default, scored[0][1], scored, note)
    return [Scored(scores.checkpoint, scores, path) for scores, _ in scored]


def write_grid(
    path: Path, first: Examples, scored: list[tuple[UnshuffleScores, Examples]], note: Note
) -> Path:
    """The reconstruction grid of ``scored`` (one column per checkpoint) on ``first``'s images."""
    recons = [(f"{s.learn} ({s.psnr:.1f} dB)", e.restored) for s, e in scored]
    s = scored[0][0]
    title = f"{s.dataset}: un-shuffling, ConvMixer-{s.width}/{s.depth} k{s.kernel}, permutation seed {s.perm_seed}"
    written = save_grid(path, first.truth, first.scrambled, recons, title=title)
    note(f"reconstruction grid: {written}")
    return written


def _load(path: Path) -> Checkpoint:
    return load_checkpoint(checkpoint_file(path))
