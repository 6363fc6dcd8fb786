"""The runs a command is asked for, where they live on disk: a recipe's points (or one run of the options),
each model checked before any of them runs, and what training would find in each run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config.recipes import Point, load_recipe, pick_point
from ..config.train import TrainConfig
from ..errors import ConfigError
from ..models.check import check_model
from .rundir import default_run_dir, read_config, run_status


def check_models(points: list[Point]) -> None:
    """Build each point's model on the meta device (:func:`~spatialmix_cli.models.check.check_model`): for
    the points that are about to run, before any of them does."""
    for point in points:
        check_model(point.config, point.where)


def listing(points: list[Point]) -> list[dict[str, Any]]:
    """What ``--list`` prints of each point: its fields and its status, the decision training would take
    on its run directory (:func:`~spatialmix_cli.store.rundir.run_status`: read-only, writes nothing)."""
    return [{**p.to_dict(), "status": run_status(p.run_dir, p.config)} for p in points]


def resolve_points(
    recipe: Path | None,
    overrides: dict[str, Any],
    out: Path | None,
    resume: bool,
    index: int | None,
    base: TrainConfig | None = None,
    *,
    check: bool = True,
) -> list[Point]:
    """The runs a command is asked for: a recipe's points (or point ``index``), or one run of ``base``
    (default: the config defaults) with ``overrides``; ``--resume`` takes the config saved in ``out``.
    ``check``: build the model of each recipe point returned on the meta device (only those: ``--index``
    checks its point, ``--list`` none); one run's model is always checked. Precedence: defaults < recipe
    base < sweep point < ``overrides``."""
    if recipe is not None:
        points = pick_point(load_recipe(recipe).points(overrides, out), index, recipe)
        if check:
            check_models(points)
        return points
    if index is not None:
        raise ConfigError("--index needs --recipe")
    if resume and out is None:
        raise ConfigError("--resume needs --out: the run directory to continue")
    saved = read_config(out) if (resume and out is not None) else None
    cfg = (saved or base or TrainConfig()).updated(overrides, "option")
    check_model(cfg, "option")
    return [Point(0, "", {}, cfg, out or default_run_dir(cfg))]
