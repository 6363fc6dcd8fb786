"""A recipe names its command (``command:``) and ``spatialmix run`` runs it with that command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spatialmix_cli.config.recipes import COMMANDS, load_recipe, parse_recipe, read_recipe, recipe_command
from spatialmix_cli.errors import ConfigError

from conftest import json_lines

REPO = Path(__file__).resolve().parents[2]
TINY = (
    "base: {arch: convmixer, width: 8, depth: 1, kernel: 3, patch: 4, dataset: synthetic, subset: 64, "
    "test_subset: 32, epochs: 1, batch_size: 32, device: cpu, logger: none}\n"
)
UNSHUFFLE = (
    "base: {task: unshuffle, arch: convmixer_unshuffle, width: 8, depth: 1, kernel: 3, dataset: synthetic, "
    "subset: 32, test_subset: 16, epochs: 1, batch_size: 16, device: cpu, logger: none}\n"
)
ATTACK = "attack: {method: fgsm, eps: [1/255], n: 16, batch_size: 16, checks: false}\n"


def _write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_command_defaults_to_what_the_recipe_holds_and_can_be_named() -> None:
    assert parse_recipe({"base": {}}).command == "train"
    assert parse_recipe({"base": {}, "attack": {"method": "fgsm"}}).command == "attack"
    assert parse_recipe({"base": {"task": "unshuffle", "arch": "convmixer_unshuffle"}}).command == "unshuffle"
    assert parse_recipe({"command": "attack", "base": {}}).command == "attack"
    assert recipe_command({"attack": {}, "base": {"task": "unshuffle"}}) == "attack"


@pytest.mark.parametrize(
    ("value", "message"),
    [("atack", "unknown command 'atack' (did you mean 'attack'?)"), (3, "'command' must be a string")],
)
def test_an_unknown_command_is_refused(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_recipe({"command": value, "base": {}}, "r.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_file_names_the_command_its_content_defaults_to(path: Path) -> None:
    data = read_recipe(path)
    assert list(data)[:2] == ["name", "command"] and data["command"] in COMMANDS
    named = data.pop("command")
    assert recipe_command(data) == named == load_recipe(path).command


@pytest.mark.parametrize(
    ("asked", "text", "named"),
    [
        ("unshuffle", TINY, "train"),
        ("unshuffle", TINY + ATTACK, "attack"),
        ("attack", UNSHUFFLE, "unshuffle"),
    ],
)
def test_a_command_refuses_a_recipe_for_another_it_cannot_run(
    cli, tmp_path: Path, asked: str, text: str, named: str
) -> None:
    _write(tmp_path, text)
    result = cli(asked, "--recipe", "r.yaml")
    assert result.exit_code == 2 and result.stdout == "" and not (tmp_path / "runs").exists()
    assert result.stderr.strip() == (
        f"error: r.yaml is {'an' if named[0] in 'aeiou' else 'a'} `{named}` recipe: run it with "
        f"`spatialmix run r.yaml` or `spatialmix {named} --recipe r.yaml`"
    )


@pytest.mark.parametrize("named", ["attack", "unshuffle"])
def test_train_trains_the_runs_of_any_recipe(cli, tmp_path: Path, named: str) -> None:
    """One point of an attack or un-shuffle recipe trained on its own (a scheduler's --index, say): the
    recipe is checked, not refused (an --index out of its range is what is refused here)."""
    _write(tmp_path, f"command: {named}\n" + (UNSHUFFLE if named == "unshuffle" else TINY))
    result = cli("train", "--recipe", "r.yaml", "--out", "o", "--index", "5")
    assert result.exit_code == 2 and "--index 5 is out of range" in result.stderr


def test_attack_attacks_a_train_recipes_runs_with_the_default_plan(cli, tmp_path: Path) -> None:
    _write(tmp_path, "command: train\n" + TINY)
    result = cli("attack", "--recipe", "r.yaml", "--out", "o", "--n", "16", "--no-checks", "--json")
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert line["attack"] == "FGSM" and line["n"] == 16


def test_run_dispatches_a_train_recipe_to_train(cli, tmp_path: Path) -> None:
    _write(tmp_path, "command: train\n" + TINY + "sweep: {learn: [full, chans]}\n")
    listed = cli("run", "r.yaml", "--list", "--out", "sweep")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout == cli("train", "--recipe", "r.yaml", "--list", "--out", "sweep").stdout
    trained = cli("run", "r.yaml", "--out", "sweep", "--index", "1", "--json")
    assert trained.exit_code == 0, trained.stderr
    (line,) = json_lines(trained.stdout)
    assert line["learn"] == "chans" and (tmp_path / "sweep/learn-chans/model.safetensors").is_file()
    assert "note:" not in trained.stderr


@pytest.mark.parametrize(("text", "named"), [(TINY + ATTACK, "attack"), (UNSHUFFLE, "unshuffle")])
def test_run_passes_its_options_to_the_command_the_recipe_names(
    cli, tmp_path: Path, text: str, named: str
) -> None:
    _write(tmp_path, text)
    result = cli("run", "r.yaml", "--dry-run")  # an option only train has: the named command says so
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: No such option: --dry-run")
    assert f"(see 'spatialmix {named} --help')" in result.stderr


@pytest.mark.parametrize(
    ("text", "named"), [(TINY, "train"), (TINY + ATTACK, "attack"), (UNSHUFFLE, "unshuffle")]
)
def test_run_lists_the_points_of_any_recipe_and_trains_nothing(
    cli, tmp_path: Path, text: str, named: str
) -> None:
    _write(tmp_path, text)
    result = cli("run", "r.yaml", "--list", "--out", "o")
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert line["index"] == 0 and line["status"] == "new" and not (tmp_path / "o").exists()
    # --list goes to the command the recipe names, like every other option
    assert result.stdout == cli(named, "--recipe", "r.yaml", "--list", "--out", "o").stdout


def test_run_list_takes_the_named_commands_options(cli, tmp_path: Path) -> None:
    _write(tmp_path, TINY + ATTACK)
    result = cli("run", "r.yaml", "--list", "--n", "16")  # --n is attack's (train has none)
    assert result.exit_code == 0, result.stderr
    assert [line["status"] for line in json_lines(result.stdout)] == ["new"]


def test_run_attacks_an_attack_recipe(cli, tmp_path: Path) -> None:
    _write(tmp_path, TINY + ATTACK)
    result = cli("run", "r.yaml", "--out", "o", "--json")
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert line["n"] == 16 and (tmp_path / "o/attacks.jsonl").is_file()


def test_run_reports_a_bad_recipe_in_one_line_and_explains_itself(cli, tmp_path: Path) -> None:
    missing = cli("run", "nope.yaml")
    assert missing.exit_code == 2 and missing.stderr.strip() == "error: recipe not found: nope.yaml"
    _write(tmp_path, "command: trian\n" + TINY)
    typo = cli("run", "r.yaml")
    assert typo.exit_code == 2 and "did you mean 'train'" in typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1
    twice = cli("run", "r.yaml", "--recipe", "other.yaml")
    assert twice.exit_code == 2 and "takes the recipe as its argument" in twice.stderr
    helped = cli("run", "--help")
    assert helped.exit_code == 0 and "command:" in helped.stdout and "--recipe" in helped.stdout


def test_run_scores_an_unshuffle_recipe(cli, tmp_path: Path) -> None:
    _write(tmp_path, UNSHUFFLE)
    result = cli("run", "r.yaml", "--out", "o", "--json")
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert line["learn"] == "full" and "psnr" in line and (tmp_path / "o/unshuffle.json").is_file()
