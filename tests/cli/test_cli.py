"""The CLI contract: JSON on stdout (parsed with json.loads), human output on stderr (but for the result
table, on stdout without --json), one-line errors with exit code 2, recipes with --list / --index, and
Ctrl-C that saves and exits 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import load_model

from conftest import json_lines

TINY = ["--dataset", "synthetic", "--set", "subset=256", "--set", "test_subset=64", "--width", "16", "--depth", "2",
        "--set", "kernel=3", "--set", "patch=4", "--batch-size", "64", "--device", "cpu",
        "--logger", "none"]  # fmt: skip


def test_train_json_contract(cli, tmp_path: Path) -> None:
    result = cli("train", *TINY, "--epochs", "1", "--learn", "chans", "--out", "run", "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON object
    for key in (
        "run_dir",
        "checkpoint",
        "test_acc",
        "epochs",
        "seconds",
        "params_trainable",
        "params_frozen",
    ):
        assert key in out, key
    assert 0 <= out["test_acc"] <= 1 and out["epochs"] == 1 and out["params_frozen"] > 0
    assert Path(out["checkpoint"]).is_file() and "epoch 1/1" in result.stderr


def test_without_json_stdout_has_the_result_table_only(cli) -> None:
    result = cli("train", *TINY, "--epochs", "1", "--out", "run")
    assert result.exit_code == 0 and "test acc" in result.stdout and "epoch 1/1" not in result.stdout


def test_dry_run_prints_the_parameter_report_and_trains_nothing(cli, tmp_path: Path) -> None:
    result = cli("train", "--arch", "sep_resnet", "--depth", "8", "--width", "4", "--learn", "chans",
                 "--dataset", "mnist", "--dry-run", "--json", "--out", "never")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params_frozen"] == report["by_type"]["spatial"]["frozen"] > 0
    assert report["params_trainable"] == sum(r["trainable"] for r in report["by_type"].values())
    assert not (tmp_path / "never").exists()
    k5 = json.loads(cli("train", "--arch", "sep_resnet", "--depth", "8", "--width", "4", "--learn", "chans",
                        "--set", "kernel=5", "--dataset", "mnist", "--dry-run", "--json").stdout)  # fmt: skip
    assert (
        k5["params_trainable"] == report["params_trainable"] and k5["params_frozen"] > report["params_frozen"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--learn", "chan"], "did you mean 'chans'"),
        (["--arch", "resnet", "--learn", "chans"], "no separable convolutions"),
        (["--epochs", "0"], "epochs must be > 0"),
        (["--lr", "-1"], "lr must be > 0"),
        (["--recipe", "missing.yaml"], "recipe not found"),
        (["--set", "nope=1"], "unknown key"),
        (["--dataset", "fashion-mnist", "--data-dir", "empty", "--set", "download=false"], "--data-dir"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], "cuda"),
        (["--index", "0"], "--index needs --recipe"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args: list[str], message: str) -> None:
    result = cli("train", "--dataset", "synthetic", *args, "--out", "run")
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_resume_needs_out_and_debug_shows_the_exception(cli) -> None:
    result = cli("train", "--dataset", "synthetic", "--resume")
    assert result.exit_code == 2 and "--resume needs --out" in result.stderr
    with pytest.raises(ConfigError, match="did you mean 'chans'"):
        cli("train", "--learn", "chan", "--debug")


@pytest.mark.slow  # two interpreters start; the real entry point is also run, fast, by the usage-error test
def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    proc = _run(["--help"], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "train" in out


def test_recipe_list_and_index(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\ndescription: test\npaper: none\nbase:\n  dataset: synthetic\n  subset: 128\n  test_subset: 32\n"
        "  width: 8\n  depth: 1\n  kernel: 3\n  patch: 4\n  epochs: 1\n  batch_size: 64\n  device: cpu\n"
        "  logger: none\nsweep:\n  learn: [full, chans, space]\n"
    )
    listed = json_lines(cli("train", "--recipe", recipe, "--list", "--out", "sweep").stdout)
    assert [p["index"] for p in listed] == [0, 1, 2] and all(p["status"] == "new" for p in listed)
    assert listed[1]["values"] == {"learn": "chans"} and listed[1]["run_dir"].endswith("learn-chans")
    one = cli("train", "--recipe", recipe, "--index", "1", "--out", "sweep", "--json")
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["learn"] == "chans"
    statuses = [
        p["status"] for p in json_lines(cli("train", "--recipe", recipe, "--list", "--out", "sweep").stdout)
    ]
    assert statuses == ["new", "finished", "new"]
    everything = json_lines(cli("train", "--recipe", recipe, "--out", "sweep", "--json").stdout)
    assert [r["learn"] for r in everything] == ["full", "chans", "space"]
    assert [r["skipped"] for r in everything] == [False, True, False]
    bad = cli("train", "--recipe", recipe, "--index", "3")
    assert bad.exit_code == 2 and "out of range" in bad.stderr


def test_list_models(cli) -> None:
    names = [m["model"] for m in json_lines(cli("train", "--list-models", "--json").stdout)]
    assert "convmixer_256_8_k5_p2" in names and "sep_resnet" in names
    plain = cli("train", "--list-models")  # the list is the result: stdout, one name a line
    assert plain.exit_code == 0 and plain.stdout.split() == names
    assert plain.stderr.startswith(
        "and timm:NAME"
    )  # the pointer to timm's zoo, on stderr: stdout stays the list


def _run(args: list[str], cwd: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "spatialmix_cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


def test_usage_errors_from_the_real_entry_point_are_one_line(tmp_path: Path) -> None:
    proc = _run(["train", "--epochs", "abc"], tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1 and "--epochs" in err


@pytest.mark.slow
def test_ctrl_c_saves_exits_130_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    args = [*TINY, "--set", "subset=512", "--epochs", "6", "--batch-size", "32", "--set", "log_every=1"]
    straight = _run(["train", *args, "--out", "straight", "--json"], tmp_path)
    assert straight.wait(timeout=300) == 0
    proc = _run(["train", *args, "--out", "killed"], tmp_path)
    deadline = time.time() + 120
    while not (tmp_path / "killed" / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.01)  # until the first epoch is done, then interrupt early in the second: a fixed
    time.sleep(0.02)  # 0.3 s more could outlast the remaining 5 tiny epochs on a fast machine
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    resumed = _run(["train", *args, "--out", "killed", "--resume", "--json"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads(out)["resumed"] is True
    a, b = (
        load_model(tmp_path / "straight" / "model.safetensors"),
        load_model(tmp_path / "killed" / "model.safetensors"),
    )
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
