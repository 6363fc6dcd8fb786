"""YAML recipes: a base config plus an optional grid sweep; one run directory per sweep point.

A recipe file::

    name: fig5-cpu
    command: train              # train | attack | unshuffle: what `spatialmix run` runs it with (optional)
    description: ConvMixer full / chans / space over depth on Fashion-MNIST
    paper: Fig. 5
    out: runs/fig5-cpu          # root of the run directories (default: runs/<name>)
    base:                       # any TrainConfig keys
      arch: convmixer
      dataset: fashion-mnist
    sweep:                      # grid over any TrainConfig keys (seeds included); optional
      learn: [full, chans, space]
      depth: [2, 4, 8]
    attack:                     # optional: what `spatialmix attack --recipe` measures (AttackPlan keys)
      method: [fgsm, pgd]
      eps: [1/255]

``sweep`` may also be a list of such grids, whose points are concatenated; in a grid, a list is an axis,
a single value is a setting of that grid only, and ``grid: label`` puts its runs in a sub-folder::

    sweep:
      - {grid: cifar10, dataset: cifar10, width: 128, learn: [full, chans], depth: [4, 8]}
      - {grid: imagenet, dataset: imagenet, width: 512, patch: 7, learn: [full, chans], depth: [8, 16]}

Points are the grids in file order (the last key varies fastest). Every point's run directory is
``<out>[/<grid>]/<key>-<value>_<key>-<value>``, so points can run in any order, on any machine of a
scheduler. A command-line value of a key the recipe does not sweep (``--seed 3``, ``--set lr=0.2``; not a
runtime key such as ``device``) that changes a point's config is added to its name, in config key order
(``learn-full_seed-3``), so it never lands in the recipe's own run directories; a swept key given on the
command line leaves the sweep and the name.

``command`` defaults to ``attack`` for a recipe with an ``attack`` section, ``unshuffle`` for one whose base
has ``task: unshuffle``, else ``train``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnsafePathError, did_you_mean
from ..safefiles import NAME_MAX, read_text, resolve_inside
from .attack import AttackPlan
from .names import canonical_json
from .safeyaml import parse_yaml
from .train import LEGACY_KEYS, RUNTIME_KEYS, TrainConfig, coerce

RECIPE_KEYS = ("name", "command", "description", "paper", "out", "base", "sweep", "attack", "notes")
COMMANDS = ("train", "attack", "unshuffle")  # the commands that run a recipe (`spatialmix run` picks one)
# `<asked> --recipe` on a recipe that names another command, where it still does what it says: train
# trains any recipe's runs (what attack and unshuffle do first; a scheduler trains one point with --index),
# attack attacks a train recipe's runs with the default plan. An un-shuffle recipe and attacks do not mix.
MEANINGFUL = {("train", "attack"), ("train", "unshuffle"), ("attack", "train")}
_FOLDER_SAFE = re.compile(r"[A-Za-z0-9._-]+")
# Points a recipe may have. Each is a training run, so a grid beyond this is almost surely a slip (a list
# where one value was meant); counting them is instant, and listing 10^4 takes a few seconds.
MAX_POINTS = 10_000


def check_inside(value: str, where: str, *, resolve: bool = True) -> str:
    """A path written in a recipe must stay inside the folder the command runs from: relative, no '..',
    and (``resolve``: when it is about to be used) not through a symbolic link that leads out of it. (A
    recipe is a file someone may hand you; the command line's --out can still point anywhere.)"""
    path = Path(value)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\0" in value:
        raise ConfigError(
            f"{where} must be a relative path without '..' (a recipe may only write inside the folder it "
            f"is run from), got {value!r}; pass --out to write elsewhere"
        )
    if not resolve:
        return value
    try:
        resolve_inside(path, Path.cwd())
    except UnsafePathError:
        raise ConfigError(
            f"{where} {value!r} leads through a symbolic link to {os.path.realpath(path)}, outside the "
            f"folder the recipe is run from ({os.path.realpath(Path.cwd())}); a recipe may only write inside "
            "it: pass --out to write there"
        ) from None
    return value


@dataclass
class Point:
    """One run of a recipe: its index, the swept values, the full config and its run directory."""

    index: int
    name: str
    values: dict[str, Any]
    config: TrainConfig
    run_dir: Path
    grid: str = ""
    where: str = "config"  # how errors about this point name it

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "grid": self.grid,
            "run_dir": str(self.run_dir),
            "values": self.values,
        }


@dataclass
class Grid:
    """One grid of a sweep: ``axes`` (key -> values, the last varying fastest), ``fixed`` settings of
    this grid only, and an optional ``label`` that becomes a sub-folder of the recipe's output."""

    axes: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass
class Recipe:
    name: str
    base: dict[str, Any] = field(default_factory=dict)
    grids: list[Grid] = field(default_factory=lambda: [Grid()])
    description: str = ""
    paper: str = ""
    out: str | None = None
    source: str = "<recipe>"
    attack: AttackPlan | None = None  # what `spatialmix attack --recipe` measures on every point
    command: str = "train"  # the command that runs it (one of COMMANDS): see recipe_command

    def size(self, overrides: dict[str, Any] | None = None) -> int:
        """How many points the grids have (before dropping duplicates), computed without expanding them."""
        overrides = overrides or {}
        return sum(math.prod(len(v) for k, v in g.axes.items() if k not in overrides) for g in self.grids)

    def root(self, out: str | Path | None = None) -> Path:
        """The root of the run directories: ``out`` (the command line's, anywhere) or the recipe's own
        ``out`` / ``runs/<name>``, which must stay inside the working folder once links are resolved."""
        if out is not None:
            return Path(out)
        root = self.out or str(Path("runs") / self.name)
        check_inside(root, f"{self.source}: {'out' if self.out else 'its default output folder'}")
        return Path(root)

    def points(self, overrides: dict[str, Any] | None = None, out: str | Path | None = None) -> list[Point]:
        """Expand the grids in order. ``overrides`` (command-line options) win over base, grid and sweep
        values; a swept key that is overridden stops being swept. Every point's config is checked, but
        not its model (built on the meta device for the points that run:
        :func:`spatialmix_cli.store.points.check_models`). More than ``MAX_POINTS`` points is an error,
        found before any is expanded."""
        return self._expand(overrides or {}, self.root(out), links=True)

    def _expand(self, overrides: dict[str, Any], root: Path, *, links: bool) -> list[Point]:
        """The points under ``root``, each config checked (without its model); ``links``: also refuse run
        directories that lead out of ``root`` through a link on disk."""
        total = self.size(overrides)
        if total > MAX_POINTS:
            raise ConfigError(
                f"{self.source}: the sweep has {total:,} points, more than the {MAX_POINTS:,} a recipe may "
                "have (each point is a training run, so this is most likely a list where one value was "
                "meant); split it into several recipes"
            )
        base = TrainConfig.from_dict(self.base, f"{self.source}: base")
        points: list[Point] = []
        seen: dict[Path, Point] = {}
        for grid in self.grids:
            axes = {k: v for k, v in grid.axes.items() if k not in overrides}
            grid_base = base.updated(grid.fixed, f"{self.source}: sweep {grid.label or 'grid'}")
            for combo in itertools.product(*axes.values()) if axes else [()]:
                values = dict(zip(axes, combo, strict=True))
                label = "/".join(filter(None, [grid.label, point_name(values)])) or str(len(points))
                where = f"{self.source}: sweep point {label}"
                swept = grid_base.updated(values, where)
                config = swept.updated(merge_model_args(swept, overrides), "option")
                name = point_name({**values, **changed_keys(swept, config, overrides, grid.axes)})
                run_dir = _run_dir(root, [p for p in (grid.label, name) if p], where, links)
                point = Point(len(points), name, values, config, run_dir, grid.label, where)
                if run_dir in seen:
                    if seen[run_dir].config != config:
                        raise ConfigError(
                            f"{self.source}: two sweep points write to {run_dir}; give each grid a 'grid' label"
                        )
                    continue
                seen[run_dir] = point
                points.append(point)
        return points


def merge_model_args(config: TrainConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with their timm arguments (``--set model.KEY=VALUE``) added to the point's own
    ``model_args`` (a key given on both sides takes the command line's value), not replacing them all."""
    if "model_args" not in overrides:
        return overrides
    merged = {**json.loads(config.model_args), **json.loads(overrides["model_args"])}
    return {**overrides, "model_args": canonical_json(merged)}


def _run_dir(root: Path, parts: list[str], where: str, links: bool) -> Path:
    """``root/parts...``, refused unless it is a folder inside ``root``, also once links are resolved (a
    run folder shipped as a link out of the recipe's output is never written through)."""
    for part in parts:
        if part in (".", "..") or not _FOLDER_SAFE.fullmatch(part):
            raise ConfigError(f"{where}: run directory {parts} would not be a folder inside {root}")
        if len(part.encode()) > NAME_MAX:
            raise ConfigError(
                f"{where}: the run directory name {part[:40]}... is {len(part.encode())} bytes, longer than "
                f"the {NAME_MAX} a folder name may have; sweep fewer keys in one grid"
            )
    run_dir = root.joinpath(*parts)
    if links and parts and os.path.lexists(root):  # nothing to resolve under a root not made yet
        try:
            resolve_inside(run_dir, root)
        except UnsafePathError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return run_dir


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return str(value)


def changed_keys(
    recipe: TrainConfig, config: TrainConfig, overrides: dict[str, Any], swept: dict[str, Any]
) -> dict[str, Any]:
    """The command-line ``overrides`` that change a point's result: keys the grid does not sweep, not
    runtime keys (device, workers, ...), whose value differs from the recipe's ``recipe`` config; in
    config key order. They go into the point's name, so ``--seed 3`` on a recipe of seed 0 gets run
    directories of its own (an overridden swept key leaves the sweep and the name, as it always did)."""
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name in overrides
        and f.name not in RUNTIME_KEYS
        and f.name not in swept
        and getattr(config, f.name) != getattr(recipe, f.name)
    }


def point_name(values: dict[str, Any]) -> str:
    """``learn-chans_depth-4`` for ``{"learn": "chans", "depth": 4}``; safe as a folder name."""
    parts = [f"{key}-{_format(value)}" for key, value in values.items()]
    return re.sub(r"[^A-Za-z0-9._-]", "_", "_".join(parts))


def _parse_grid(raw: Any, where: str) -> Grid:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of key: [values], got {type(raw).__name__}")
    grid = Grid()
    for key, values in raw.items():
        if key == "grid":
            if not isinstance(values, str) or not _FOLDER_SAFE.fullmatch(values) or values in (".", ".."):
                raise ConfigError(
                    f"{where}.grid must be a folder-safe label (letters, digits, . _ -), got {values!r}"
                )
            grid.label = values
        elif isinstance(values, list):
            if not values:
                raise ConfigError(f"{where}.{key} must be a non-empty list")
            grid.axes[key] = [coerce(key, v, where, f"{where}.{key}[{i}]") for i, v in enumerate(values)]
        elif isinstance(values, dict) and key != "model_args":  # timm's arguments are one mapping value
            raise ConfigError(f"{where}.{key} must be a value or a list of values, got a mapping")
        else:
            grid.fixed[key] = coerce(key, values, where)
    return grid


def is_config(data: Any) -> bool:
    """Whether a mapping is a config of its own (a run's config.yaml: config keys, no recipe sections)."""
    keys = {*TrainConfig.keys(), *LEGACY_KEYS}
    return isinstance(data, dict) and bool(data) and all(k in keys and k not in RECIPE_KEYS for k in data)


def parse_recipe(data: Any, source: str = "<recipe>", default_name: str = "recipe") -> Recipe:
    """Check a recipe mapping key by key; every sweep value is type-checked where it stands. A config of
    its own (a run's config.yaml) is the recipe of that one run: its ``base``."""
    if is_config(data):
        data = {"base": TrainConfig.from_dict(data, source).to_dict()}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a recipe must be a mapping with a 'base' section, got {type(data).__name__}"
        )
    for key in data:
        if key not in RECIPE_KEYS:
            allowed = ", ".join(RECIPE_KEYS)
            raise ConfigError(
                f"{source}: unknown key '{key}'{did_you_mean(str(key), RECIPE_KEYS)}; allowed: {allowed}"
            )
    for key in ("name", "command", "description", "paper", "out", "notes"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {data[key]!r}")
    name = data.get("name")
    if name is not None and (not _FOLDER_SAFE.fullmatch(name) or name in (".", "..")):
        raise ConfigError(
            f"{source}: 'name' becomes a folder name (runs/<name>); use letters, digits, . _ - only "
            f"(and not '.' or '..'), got {name!r}"
        )
    if data.get("out"):
        check_inside(data["out"], f"{source}: 'out'", resolve=False)  # links: when it is used (root())
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"{source}: 'base' must be a mapping of config keys, got {type(base).__name__}")
    sweep = data.get("sweep") or {}
    if isinstance(sweep, list):
        grids = [_parse_grid(g, f"{source}: sweep[{i}]") for i, g in enumerate(sweep)] or [Grid()]
    else:
        grids = [_parse_grid(sweep, f"{source}: sweep")]
    attack = data.get("attack")
    recipe = Recipe(
        command=recipe_command(data, source),
        attack=AttackPlan.from_dict(attack, f"{source}: attack") if attack is not None else None,
        name=data.get("name") or default_name,
        base=dict(base),
        grids=grids,
        description=data.get("description") or "",
        paper=data.get("paper") or "",
        out=data.get("out"),
        source=source,
    )
    # Check every point's config now, not halfway through a sweep (the size first; models are built for
    # the points that run, and links on disk are looked at under the root actually used: see points()).
    recipe._expand({}, Path(recipe.out or Path("runs") / recipe.name), links=False)
    return recipe


def recipe_command(data: dict[str, Any], source: str = "<recipe>") -> str:
    """The command a recipe mapping names (``command:``), or its default: ``attack`` with an ``attack``
    section, ``unshuffle`` when its base has ``task: unshuffle``, else ``train``."""
    command = data.get("command")
    if command is None:
        base = data.get("base")
        task = base.get("task") if isinstance(base, dict) else None
        return "attack" if data.get("attack") is not None else "unshuffle" if task == "unshuffle" else "train"
    if command not in COMMANDS:
        raise ConfigError(
            f"{source}: unknown command {command!r}{did_you_mean(str(command), COMMANDS)}; "
            f"allowed: {', '.join(COMMANDS)}"
        )
    return str(command)


def read_recipe(path: str | Path, what: str = "recipe") -> Any:
    """A recipe (or config: ``what``) file's YAML (``yaml.safe_load`` only), not yet checked."""
    path = Path(path)
    try:
        text = read_text(path)  # a regular file only: a FIFO named as a recipe is refused, not waited on
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    return parse_yaml(text, str(path))


def load_config(path: str | Path) -> TrainConfig:
    """A config file (a run's config.yaml: its keys, as the run saved them), checked; the base of one run
    (``spatialmix train --config``) that runs it again as given."""
    data = read_recipe(path, "config")
    if not is_config(data):
        raise ConfigError(
            f"{path}: a config file is a mapping of config keys (a run's config.yaml)"
            "; a recipe (base, sweep, ...) goes with --recipe"
        )
    return TrainConfig.from_dict(data, str(path))


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file (``yaml.safe_load`` only)."""
    return parse_recipe(read_recipe(path), str(path), default_name=Path(path).stem)


def named_command(path: str | Path) -> str:
    """The command recipe file ``path`` names (read without expanding its points: see recipe_command)."""
    data = read_recipe(path)
    if not isinstance(data, dict):
        return parse_recipe(data, str(path)).command  # raises the usual error about its shape
    return recipe_command(data, str(path))


def check_command(path: str | Path, asked: str) -> None:
    """Refuse ``spatialmix <asked> --recipe path`` when the recipe names another command and ``asked``
    cannot run it (see MEANINGFUL), naming the command to use. A recipe that cannot be read is left for
    ``asked`` to report, as it did before recipes named their command."""
    try:
        named = named_command(path)
    except ConfigError:
        return
    if named != asked and (asked, named) not in MEANINGFUL:
        raise ConfigError(
            f"{path} is {_a(named)} `{named}` recipe: run it with `spatialmix run {path}` or "
            f"`spatialmix {named} --recipe {path}`"
        )


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["lr=0.1", "hflip=false"]`` → ``{"lr": 0.1, "hflip": False}``; values are read as YAML scalars.
    ``model.KEY=VALUE`` is one of timm's own arguments: they gather into the ``model_args`` key
    (``model.drop_path_rate=0.1`` → ``model_args: {"drop_path_rate":0.1}``)."""
    out: dict[str, Any] = {}
    model_args: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        try:
            value = parse_yaml(raw, "--set") if raw.strip() else None
        except ConfigError:
            value = raw
        if key.startswith("model.") and key != "model.":
            model_args[key[len("model.") :]] = value
            continue
        out[key] = coerce(key, value, "--set")
    if model_args:
        if "model_args" in out:
            raise ConfigError(
                "--set: give timm's arguments as model_args={...} or as model.KEY=VALUE, not both"
            )
        out["model_args"] = coerce("model_args", model_args, "--set")
    return out


def pick_point(points: list[Point], index: int | None, recipe: Path) -> list[Point]:
    """``points``, or only point ``index`` of them (``--index``: refused out of range)."""
    if index is None:
        return points
    if not 0 <= index < len(points):
        raise ConfigError(
            f"--index {index} is out of range: {recipe} has {len(points)} points (0..{len(points) - 1})"
        )
    return [points[index]]
