"""Every command works on a run trained under the ladder's new learn modes (issue 33): train, info, eval,
attack and spectrum on a ``norm`` run, and an un-shuffle run under ``head`` (its 1x1 pixel projection)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import json_lines

TINY = ["--dataset", "synthetic", "--set", "subset=128", "--set", "test_subset=32", "--width", "16", "--depth", "2",
        "--set", "kernel=3", "--set", "patch=4", "--batch-size", "64", "--device", "cpu", "--logger", "none"]  # fmt: skip


def test_every_command_reads_a_norm_run(cli) -> None:
    trained = cli("train", *TINY, "--epochs", "1", "--learn", "norm", "--out", "run", "--json")
    assert trained.exit_code == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["learn"] == "norm" and 0 < result["params_trainable"] < result["params_frozen"]
    info = json.loads(cli("info", "run", "--json").stdout)
    assert info["learn"] == "norm"
    (evaluated,) = json_lines(cli("eval", "run", "--json").stdout)
    assert evaluated["acc"] == result["test_acc"]  # the saved weights give the trained run's accuracy
    attacked = cli("attack", "run", "--method", "fgsm", "--eps", "1/255", "--n", "16", "--json")
    assert attacked.exit_code == 0, attacked.stderr
    assert {r["learn"] for r in json_lines(attacked.stdout)} == {"norm"}
    spectrum = cli("spectrum", "run/model.safetensors", "--out", "s.png", "--json")
    assert spectrum.exit_code == 0, spectrum.stderr


def test_an_unshuffle_run_learns_only_its_pixel_projection_under_head(cli) -> None:
    trained = cli("unshuffle", "--dataset", "synthetic", "--set", "subset=64", "--set", "test_subset=16",
                  "--width", "8", "--depth", "1", "--set", "kernel=3", "--epochs", "1", "--batch-size", "32",
                  "--device", "cpu", "--logger", "none", "--learn", "head", "--out", "u", "--json")  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    (result,) = Path("u").rglob("result.json")  # the cli fixture runs in the test's own folder
    assert (
        json.loads(result.read_text())["params_trainable"] == 8 * 3 + 3
    )  # the 1x1 projection from 8 features to 3 channels, with bias
