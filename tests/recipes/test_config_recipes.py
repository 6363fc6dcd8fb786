"""Config and recipe checking: strict keys and types with the key path named, sweeps, overrides, and
every recipe file in recipes/ validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatialmix_cli.attacks.spec import AttackSpec
from spatialmix_cli.config.recipes import load_recipe, parse_recipe, parse_set
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.points import check_models

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ({"lrr": 0.1}, r"r\.yaml: base: unknown key 'lrr' \(did you mean 'lr'\?\)"),
        ({"lr": "fast"}, r"base\.lr must be a number, got 'fast'"),
        ({"epochs": 2.5}, r"base\.epochs must be an integer"),
        ({"epochs": 0}, r"base\.epochs must be > 0"),
        ({"batch_size": -4}, r"base\.batch_size must be > 0"),
        ({"lr": 0}, r"base\.lr must be > 0"),
        ({"learn": "chan"}, r"did you mean 'chans'"),
        ({"filters": "boxx"}, r"did you mean 'box'"),
        ({"arch": "convmixr"}, r"did you mean 'convmixer'"),
        ({"dataset": "cifar"}, r"did you mean 'cifar10'"),
        ({"hflip": "yes"}, r"base\.hflip must be true/false"),
    ],
)
def test_bad_base_values_name_the_key(base: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_recipe({"base": base}, "r.yaml")


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ({"arch": "sep_resnet", "depth": 12}, r"6n\+2"),
        ({"arch": "sep_resnet", "patch": 2}, r"takes no argument 'patch'"),
    ],
)
def test_a_model_that_cannot_be_built_is_refused_before_its_point_runs(base: dict, message: str) -> None:
    """The models layer's check (config imports no models): made on the points about to run."""
    points = parse_recipe({"base": base}, "r.yaml").points()
    with pytest.raises(ConfigError, match=rf"r\.yaml: sweep point 0: .*{message}"):
        check_models(points)


def test_bad_sweeps_and_top_level_keys() -> None:
    with pytest.raises(ConfigError, match=r"sweep\.depth\[1\] must be an integer"):
        parse_recipe({"sweep": {"depth": [2, "four"]}}, "r.yaml")
    with pytest.raises(ConfigError, match=r"r\.yaml: sweep: unknown key 'deptt'"):
        parse_recipe({"sweep": {"deptt": [2]}}, "r.yaml")
    with pytest.raises(ConfigError, match=r"sweep\.learn must be a non-empty list"):
        parse_recipe({"sweep": {"learn": []}}, "r.yaml")
    with pytest.raises(ConfigError, match=r"sweep\[1\]\.grid must be a folder-safe label"):
        parse_recipe({"sweep": [{"grid": "a"}, {"grid": "../b"}]}, "r.yaml")
    with pytest.raises(ConfigError, match=r"unknown key 'bse'.*did you mean 'base'"):
        parse_recipe({"bse": {}}, "r.yaml")
    with pytest.raises(ConfigError, match="a recipe must be a mapping"):
        parse_recipe([1, 2], "r.yaml")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("base:\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML at line"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_sweep_points_overrides_and_run_dirs(tmp_path: Path) -> None:
    recipe = parse_recipe(
        {
            "name": "t",
            "base": {"dataset": "synthetic", "lr": 0.1},
            "sweep": {"learn": ["full", "chans"], "seed": [0, 1]},
        }
    )
    points = recipe.points(out=tmp_path)
    assert [p.name for p in points] == [
        "learn-full_seed-0",
        "learn-full_seed-1",
        "learn-chans_seed-0",
        "learn-chans_seed-1",
    ]
    assert points[3].config.learn == "chans" and points[3].config.seed == 1 and points[3].config.lr == 0.1
    assert len({p.run_dir for p in points}) == 4 and all(p.run_dir.parent == tmp_path for p in points)
    # a command-line value wins and removes its axis from the sweep; one of a key the recipe does not
    # sweep (lr) goes into the name, so it does not reuse the recipe's own run directories
    overridden = recipe.points({"learn": "space", "lr": 0.2}, out=tmp_path)
    assert [p.name for p in overridden] == ["seed-0_lr-0.2", "seed-1_lr-0.2"]
    assert all(p.config.learn == "space" and p.config.lr == 0.2 for p in overridden)


def test_a_list_of_grids_with_labels_and_per_grid_settings(tmp_path: Path) -> None:
    recipe = parse_recipe(
        {
            "base": {"dataset": "synthetic"},
            "sweep": [
                {"grid": "cm", "arch": "convmixer", "width": 8, "depth": [1, 2]},
                {"grid": "rn", "arch": "sep_resnet", "width": 4, "depth": [8]},
            ],
        }
    )
    points = recipe.points(out=tmp_path)
    assert [(p.grid, p.name) for p in points] == [("cm", "depth-1"), ("cm", "depth-2"), ("rn", "depth-8")]
    assert points[2].config.arch == "sep_resnet" and points[2].run_dir == tmp_path / "rn" / "depth-8"
    assert points[0].config.width == 8 and points[2].config.width == 4
    with pytest.raises(ConfigError, match="two sweep points write to"):
        parse_recipe({"base": {"dataset": "synthetic"}, "sweep": [{"lr": 0.1}, {"lr": 0.2}]})


def test_set_overrides_parse_yaml_scalars() -> None:
    assert parse_set(["lr=0.5", "hflip=false", "grad_clip=null", "arch=sep_resnet"]) == {
        "lr": 0.5, "hflip": False, "grad_clip": None, "arch": "sep_resnet",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["lr"])
    with pytest.raises(ConfigError, match="unknown key"):
        parse_set(["nope=1"])


def test_config_round_trip_and_diff() -> None:
    cfg = TrainConfig.from_dict({"learn": "chans", "width": 32})
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and not cfg.diff(again)
    assert cfg.diff(cfg.updated({"lr": 0.5})) == {"lr": (0.01, 0.5)}


def test_non_finite_numbers_are_rejected() -> None:
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig.from_dict({"lr": float("nan")})


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_recipe_file_is_valid(path: Path) -> None:
    recipe = load_recipe(path)
    points = recipe.points()
    assert points, path
    assert recipe.description and recipe.paper, f"{path.name} needs a description and the paper figure"
    for point in points:
        point.config.validate(path.name)
    check_models(points)  # every point's model builds and runs on its images


def test_recipes_cover_the_paper_figures_with_cpu_twins() -> None:
    names = {p.stem for p in RECIPES}
    for fig in ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "figB4", "figB5"):
        assert fig in names and f"{fig}-cpu" in names, fig
    assert "fig10" in names  # CIFAR-10 un-shuffling needs a GPU; its twins are figB4-cpu / figB5-cpu


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem.endswith("-cpu")], ids=lambda p: p.name)
def test_cpu_twins_use_real_small_data(path: Path) -> None:
    for point in load_recipe(path).points():
        assert point.config.dataset in ("mnist", "fashion-mnist")


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem != "demo"], ids=lambda p: p.name)
def test_every_paper_recipe_runs_each_compared_cell_with_three_paired_seeds(path: Path) -> None:
    """A verdict needs an interval, and an interval needs seeds: every cell (a config up to its seed) of
    every paper recipe and CPU twin is run with the same three or more seeds, so cells pair seed by seed."""
    cells: dict[tuple, set[int]] = {}
    for point in load_recipe(path).points():
        cfg = point.config.to_dict()
        seed = cfg.pop("seed")
        cells.setdefault(tuple(sorted(cfg.items())), set()).add(seed)
    seeds = {frozenset(s) for s in cells.values()}
    assert len(seeds) == 1, f"{path.name}: cells run with different seeds: {seeds}"
    assert len(next(iter(seeds))) >= 3, f"{path.name}: {len(next(iter(seeds)))} seed(s) per cell"


@pytest.mark.parametrize(
    "path", [p for p in RECIPES if load_recipe(p).attack is not None], ids=lambda p: p.name
)
def test_robustness_recipes_use_the_papers_pgd(path: Path) -> None:
    """Figs. 6 and 7 (and their twins) attack with the paper's PGD-2: Eq. 4 twice, α = ε, no random start."""
    plan = load_recipe(path).attack
    assert "pgd" in plan.methods and plan.steps == 2 and plan.pgd_variant == "paper"
    spec = AttackSpec.from_plan(plan, "pgd", 2 / 255)
    assert spec.step_size == pytest.approx(2 / 255) and spec.random_start is False


def test_size_limits_are_the_size_keys_own_bounds() -> None:
    """One fact: a model's size check reads each size key's upper bound from its config field, so the
    option, a recipe and a checkpoint's metadata are refused at the same value."""
    from spatialmix_cli.config.keys import specs
    from spatialmix_cli.models._registry import SIZE_LIMITS

    keys = specs(TrainConfig)
    for name in ("width", "depth", "kernel", "patch", "depth_multiplier"):
        assert SIZE_LIMITS[name] == keys[name].upper()
        limit = int(SIZE_LIMITS[name])
        TrainConfig.from_dict({name: limit})  # the bound itself is allowed
        with pytest.raises(ConfigError, match=f"{name} must be at most {limit}"):
            TrainConfig.from_dict({name: limit + 1})
