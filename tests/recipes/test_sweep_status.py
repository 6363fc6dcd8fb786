"""Sweep status that can be trusted: ``--list`` says what training would decide for each point (finished,
unfinished, busy, other-config or new) and writes nothing; an override of a key the recipe does not sweep
gets run directories of its own; attack and unshuffle list and pick points as train does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spatialmix_cli.config.recipes import load_recipe
from spatialmix_cli.store.lock import claim
from spatialmix_cli.store.rundir import STATUSES, read_config, run_status
from spatialmix_cli.training.loop import TrainingInterrupted, train

from conftest import json_lines

TINY = (
    "base: {arch: convmixer, width: 8, depth: 1, kernel: 3, patch: 4, dataset: synthetic, subset: 64, "
    "test_subset: 32, epochs: 1, batch_size: 32, device: cpu, logger: none}\n"
)
FIVE = TINY + "sweep: {learn: [full, chans, space], seed: [0, 1]}\n"  # six points
UNSHUFFLE = (
    "base: {task: unshuffle, arch: convmixer_unshuffle, width: 8, depth: 1, kernel: 3, dataset: synthetic, "
    "subset: 32, test_subset: 16, epochs: 1, batch_size: 16, device: cpu, logger: none}\n"
    "sweep: {learn: [full, chans]}\n"
)
ATTACK = "attack: {method: fgsm, eps: [1/255], n: 16, batch_size: 16, checks: false}\n"


def _statuses(cli, *args: str) -> dict[str, str]:
    result = cli(*args, "--list")
    assert result.exit_code == 0, result.stderr
    return {line["name"]: line["status"] for line in json_lines(result.stdout)}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (dotfiles included) with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.name != "r.yaml"
    }


def _five_statuses(cli, tmp_path: Path) -> Path:
    """A sweep with one point of each status, each made the way it happens: trained, interrupted, another
    config trained into a point's folder; ``busy`` is the claim the caller holds."""
    (tmp_path / "r.yaml").write_text(FIVE)
    assert cli("train", "--recipe", "r.yaml", "--index", "0").exit_code == 0  # learn-full_seed-0
    points = load_recipe(tmp_path / "r.yaml").points()
    with pytest.raises(TrainingInterrupted):  # learn-full_seed-1: stopped after its first step
        train(points[1].config, points[1].run_dir, should_stop=lambda: True)
    train(points[2].config.updated({"learn": "space"}), points[2].run_dir)  # learn-chans_seed-0: a space run
    return points[3].run_dir  # learn-chans_seed-1: the caller claims it


def test_list_says_what_training_would_decide_for_each_of_the_five_statuses(cli, tmp_path: Path) -> None:
    busy = _five_statuses(cli, tmp_path)
    expected = {
        "learn-full_seed-0": "finished",
        "learn-full_seed-1": "unfinished",
        "learn-chans_seed-0": "other-config",
        "learn-chans_seed-1": "busy",
        "learn-space_seed-0": "new",
        "learn-space_seed-1": "new",
    }
    with claim(busy):
        assert _statuses(cli, "train", "--recipe", "r.yaml") == expected
        assert set(expected.values()) == set(STATUSES)
        # ... and training decides the same: busy is skipped, other-config refused, unfinished needs --resume
        skipped = cli("train", "--recipe", "r.yaml", "--index", "3", "--json")
        assert skipped.exit_code == 0 and json_lines(skipped.stdout)[0]["busy"] is True
    refused = cli("train", "--recipe", "r.yaml", "--index", "2")
    assert (
        refused.exit_code == 2
        and "holds a run with another config (learn: 'space' -> 'chans')" in refused.stderr
    )
    unfinished = cli("train", "--recipe", "r.yaml", "--index", "1")
    assert unfinished.exit_code == 2 and "holds an unfinished run" in unfinished.stderr
    done = cli("train", "--recipe", "r.yaml", "--index", "0")
    assert done.exit_code == 0 and "already finished" in done.stderr
    # the claim released, the same folder is free again: it holds nothing yet, so it is new
    assert _statuses(cli, "train", "--recipe", "r.yaml")["learn-chans_seed-1"] == "new"


def test_a_finished_run_of_another_config_is_not_listed_as_finished(cli, tmp_path: Path) -> None:
    """The issue's case: the recipe changed after its points were trained; --list must not say finished."""
    (tmp_path / "r.yaml").write_text(TINY + "sweep: {learn: [full]}\n")
    assert cli("train", "--recipe", "r.yaml").exit_code == 0
    assert _statuses(cli, "train", "--recipe", "r.yaml") == {"learn-full": "finished"}
    (tmp_path / "r.yaml").write_text(TINY.replace("width: 8", "width: 16") + "sweep: {learn: [full]}\n")
    assert _statuses(cli, "train", "--recipe", "r.yaml") == {"learn-full": "other-config"}
    # a runtime key (the device) does not make another config
    point = load_recipe(tmp_path / "r.yaml").points()[0]
    assert run_status(point.run_dir, read_config(point.run_dir).updated({"device": "auto"})) == "finished"


def test_list_writes_nothing_not_even_a_lock_file(cli, tmp_path: Path) -> None:
    busy = _five_statuses(cli, tmp_path)
    with claim(busy):
        before = _tree(tmp_path)
        for command in ("train", "attack"):
            assert len(_statuses(cli, command, "--recipe", "r.yaml")) == 6
        assert _tree(tmp_path) == before
    assert not (tmp_path / "runs/r/learn-space_seed-0").exists()
    fresh = cli("train", "--recipe", "r.yaml", "--out", "elsewhere", "--list")
    assert fresh.exit_code == 0 and not (tmp_path / "elsewhere").exists()


def test_seed_on_a_recipe_that_does_not_sweep_seeds_gets_run_dirs_of_its_own(cli, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(TINY + "sweep: {learn: [full, chans]}\n")
    assert cli("train", "--recipe", "r.yaml", "--index", "0").exit_code == 0
    assert _statuses(cli, "train", "--recipe", "r.yaml") == {"learn-full": "finished", "learn-chans": "new"}
    seeded = {"learn-full_seed-3": "new", "learn-chans_seed-3": "new"}
    assert _statuses(cli, "train", "--recipe", "r.yaml", "--seed", "3") == seeded
    assert _statuses(cli, "train", "--recipe", "r.yaml", "--set", "seed=3") == seeded
    # overrides in key order whatever the command line's order; the recipe's own value changes nothing
    both = _statuses(cli, "train", "--recipe", "r.yaml", "--set", "lr=0.5", "--seed", "3")
    assert list(both) == ["learn-full_lr-0.5_seed-3", "learn-chans_lr-0.5_seed-3"]  # lr comes before seed
    assert _statuses(cli, "train", "--recipe", "r.yaml", "--seed", "3", "--set", "lr=0.5") == both
    assert _statuses(cli, "train", "--recipe", "r.yaml", "--seed", "0")["learn-full"] == "finished"
    # runtime keys keep the names
    assert _statuses(cli, "train", "--recipe", "r.yaml", "--device", "cpu", "--set", "workers=0") == {
        "learn-full": "finished",
        "learn-chans": "new",
    }
    trained = cli("train", "--recipe", "r.yaml", "--seed", "3", "--index", "0", "--json")
    assert trained.exit_code == 0, trained.stderr
    (line,) = json_lines(trained.stdout)
    assert line["run_dir"] == os.path.join("runs", "r", "learn-full_seed-3") and not line["skipped"]
    assert read_config(tmp_path / "runs/r/learn-full_seed-3").seed == 3
    assert read_config(tmp_path / "runs/r/learn-full").seed == 0
    assert _statuses(cli, "train", "--recipe", "r.yaml", "--seed", "3")["learn-full_seed-3"] == "finished"


def test_attack_recipe_lists_and_runs_one_point(cli, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(TINY + "sweep: {learn: [full, chans]}\n" + ATTACK)
    assert _statuses(cli, "attack", "--recipe", "r.yaml", "--out", "o") == {
        "learn-full": "new",
        "learn-chans": "new",
    }
    assert not (tmp_path / "o").exists()  # listed: nothing trained, nothing attacked
    one = cli("attack", "--recipe", "r.yaml", "--out", "o", "--index", "1", "--json")
    assert one.exit_code == 0, one.stderr
    (line,) = json_lines(one.stdout)
    assert line["learn"] == "chans" and (tmp_path / "o/learn-chans/attacks.jsonl").is_file()
    assert not (tmp_path / "o/learn-full").exists()
    listed = cli("attack", "--recipe", "r.yaml", "--out", "o", "--list", "--index", "1")
    assert [(p["index"], p["status"]) for p in json_lines(listed.stdout)] == [(1, "finished")]
    assert (
        cli("run", "r.yaml", "--out", "o", "--list").stdout
        == cli("attack", "--recipe", "r.yaml", "--out", "o", "--list").stdout
    )  # `run` passes --list on to the command the recipe names
    for args, message in [
        (["attack", "o/learn-chans", "--index", "0"], "--index needs --recipe"),
        (["attack", "o/learn-chans", "--list"], "--list needs --recipe"),
        (["attack", "--recipe", "r.yaml", "--index", "2"], "--index 2 is out of range"),
    ]:
        bad = cli(*args)
        assert bad.exit_code == 2 and message in bad.stderr and bad.stdout == ""


def test_unshuffle_recipe_lists_and_runs_one_point(cli, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(UNSHUFFLE)
    assert _statuses(cli, "unshuffle", "--recipe", "r.yaml", "--out", "o") == {
        "learn-full": "new",
        "learn-chans": "new",
    }
    assert not (tmp_path / "o").exists()
    one = cli("unshuffle", "--recipe", "r.yaml", "--out", "o", "--index", "0", "--json")
    assert one.exit_code == 0, one.stderr
    (line,) = json_lines(one.stdout)
    assert line["learn"] == "full" and (tmp_path / "o/learn-full/unshuffle.json").is_file()
    assert not (tmp_path / "o/learn-chans").exists()
    assert _statuses(cli, "unshuffle", "--recipe", "r.yaml", "--out", "o") == {
        "learn-full": "finished",
        "learn-chans": "new",
    }
    assert (
        cli("run", "r.yaml", "--out", "o", "--list").stdout
        == cli("unshuffle", "--recipe", "r.yaml", "--out", "o", "--list").stdout
    )
    bad = cli("unshuffle", "--eval", "o/learn-full", "--list")
    assert bad.exit_code == 2 and "--eval re-evaluates checkpoints" in bad.stderr
