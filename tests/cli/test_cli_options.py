"""Every config key is an option of every command that trains (issue 30): `--kernel 5 --patch 2 --subset
2000` as `--set` writes them, a flag and `--set` of one key refused, the same overrides for `attack
--recipe` and `run`, and a run's saved config.yaml run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command

from spatialmix_cli.cli.app import app
from spatialmix_cli.config.names import MODEL_NAMES
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.store.rundir import read_config

from conftest import json_lines

TINY = ["--dataset", "synthetic", "--width", "8", "--depth", "1", "--kernel", "3", "--patch", "4",
        "--subset", "64", "--test-subset", "32", "--epochs", "1", "-b", "32", "--device", "cpu",
        "--logger", "none"]  # fmt: skip
RECIPE = (
    "base: {arch: convmixer, width: 8, depth: 1, kernel: 3, patch: 4, dataset: synthetic, subset: 64, "
    "test_subset: 32, epochs: 3, batch_size: 32, device: cpu, logger: none}\n"
    "attack: {method: fgsm, eps: [1/255], n: 16, batch_size: 16, checks: false}\n"
)


def _dry_config(cli, *args: str) -> dict:
    result = cli("train", "--dataset", "synthetic", *args, "--dry-run", "--json", "--out", "never")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["config"]


def test_the_papers_axes_are_options_that_set_what_set_sets(cli) -> None:
    flags = _dry_config(cli, "--kernel", "5", "--patch", "2", "--subset", "2000")
    assert flags == _dry_config(cli, "--set", "kernel=5", "--set", "patch=2", "--set", "subset=2000")
    assert (flags["kernel"], flags["patch"], flags["subset"]) == (5, 2, 2000)


def test_every_config_key_is_an_option_the_rare_ones_hidden_but_working(cli) -> None:
    group = get_command(app)
    for name in ("train", "unshuffle", "attack"):
        command = group.get_command(typer.Context(group), name)
        opts = {o for p in command.params for o in p.opts}
        own = {"seed", "batch_size", "data_dir", "device"} if name == "attack" else set()  # attack's own
        assert {"--" + k.replace("_", "-") for k in TrainConfig.keys() if k not in own} <= opts, name
    config = _dry_config(cli, "--label-smoothing", "0.1", "--no-hflip", "--optimizer", "sgd")
    assert (config["label_smoothing"], config["hflip"], config["optimizer"]) == (0.1, False, "sgd")
    assert "--label-smoothing" not in cli("train", "--help").stdout  # rarely used: out of the short help


def test_a_flag_and_set_of_one_key_are_one_error(cli) -> None:
    result = cli("train", "--dataset", "synthetic", "--kernel", "5", "--set", "kernel=3", "--dry-run")
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "--kernel" in line and "kernel=" in line
    epochs = cli("train", "--dataset", "synthetic", "--epochs", "3", "--set", "epochs=2", "--dry-run")
    assert epochs.exit_code == 2 and "--epochs and --set epochs=" in epochs.stderr  # once --set silently won


def test_a_runs_saved_config_runs_again_as_given(cli, tmp_path: Path) -> None:
    assert cli("train", *TINY, "--learn", "chans", "--out", "first").exit_code == 0
    again = cli("train", "--config", "first/config.yaml", "--out", "again", "--json")
    assert again.exit_code == 0, again.stderr
    assert read_config(tmp_path / "again") == read_config(tmp_path / "first")
    assert (
        json.loads(again.stdout)["test_acc"]
        == json.loads((tmp_path / "first/result.json").read_text())["test_acc"]
    )
    recipe = cli("train", "--recipe", "first/config.yaml", "--out", "as-recipe", "--epochs", "2")
    assert recipe.exit_code == 0, recipe.stderr
    changed = read_config(tmp_path / "as-recipe/epochs-2")  # a recipe names a point by what it changes
    assert changed.diff(read_config(tmp_path / "first")) == {"epochs": (2, 1)}


def test_attack_recipe_takes_trains_overrides(cli, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    shrunk = cli(
        "attack", "--recipe", "r.yaml", "--epochs", "1", "--set", "subset=32", "--out", "o", "--json"
    )
    assert shrunk.exit_code == 0, shrunk.stderr
    (run,) = [p for p in (tmp_path / "o").iterdir() if p.is_dir()]
    assert (read_config(run).epochs, read_config(run).subset) == (1, 32)
    first = (run / "model.safetensors").stat().st_mtime_ns
    again = cli("attack", "--recipe", "r.yaml", "--epochs", "1", "--set", "subset=32", "--out", "o",
                "--overwrite", "--json")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert (run / "model.safetensors").stat().st_mtime_ns != first  # trained anew
    assert len((run / "attacks.jsonl").read_text().splitlines()) == 1  # the old run's results went with it


def test_run_passes_trains_overrides_to_an_attack_recipe(cli, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    listed = cli("run", "r.yaml", "--epochs", "1", "--set", "subset=32", "--list", "--out", "o")
    assert listed.exit_code == 0, listed.stderr
    (point,) = json_lines(listed.stdout)
    assert point["name"] == "subset-32_epochs-1" and point["status"] == "new"


@pytest.mark.parametrize("args", [["--epochs", "1"], ["--overwrite"], ["--set", "subset=32"]])
def test_attack_training_options_need_a_recipe(cli, args: list[str]) -> None:
    result = cli("attack", "run", *args)
    assert result.exit_code == 2 and "goes with --recipe" in result.stderr


@pytest.mark.parametrize(
    ("command", "option", "values"),
    [
        ("train", "learn", ["head", "norm", "chans", "full", "space"]),
        ("unshuffle", "learn", ["head", "norm", "chans", "full", "space"]),
        (
            "train",
            "dataset",
            ["mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet", "folder", "synthetic"],
        ),
        ("train", "filters", ["random", "same", "box", "identity", "smooth", "pretrained"]),
        ("attack", "method", ["fgsm", "pgd", "autoattack", "autoattack-fast"]),
        ("train", "arch", list(MODEL_NAMES)),  # spatialmix's own; timm:NAME is typed out
    ],
)
def test_shell_completion_offers_a_choice_options_values(
    command: str, option: str, values: list[str]
) -> None:
    group = get_command(app)
    cmd = group.get_command(typer.Context(group), command)
    ctx = typer.Context(cmd)
    param = next(p for p in cmd.params if p.name == option)
    assert sorted(i.value for i in param.shell_complete(ctx, "")) == sorted(values)
    assert [i.value for i in param.shell_complete(ctx, values[0][:2])] == [
        v for v in values if v.startswith(values[0][:2])
    ]


def test_the_shell_asks_and_gets_the_values() -> None:
    """What bash runs on TAB (typer's completion protocol), end to end through `spatialmix`'s main()."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "_SPATIALMIX_COMPLETE": "complete_bash", "COMP_WORDS": "spatialmix train --learn c",
           "COMP_CWORD": "3", "PYTHONPATH": str(root)}  # fmt: skip
    code = "import sys; sys.argv = ['spatialmix']; from spatialmix_cli.cli.app import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=root
    )
    assert proc.returncode == 0 and proc.stdout.split() == ["chans"], proc.stderr


def test_unshuffle_recipe_takes_the_same_overrides(cli, tmp_path: Path) -> None:
    (tmp_path / "u.yaml").write_text(
        "base: {task: unshuffle, arch: convmixer_unshuffle, width: 8, depth: 1, kernel: 3, dataset: synthetic, "
        "subset: 32, test_subset: 16, epochs: 1, batch_size: 16, device: cpu}\n"
    )
    listed = cli(
        "unshuffle", "--recipe", "u.yaml", "--subset", "16", "--set", "lr=0.02", "--list", "--out", "o"
    )
    assert listed.exit_code == 0, listed.stderr
    assert [p["name"] for p in json_lines(listed.stdout)] == ["subset-16_lr-0.02"]
