"""`spatialmix eval`, `spatialmix info`, `-` for stdin, `--version` and the bare command."""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spatialmix_cli import TrainConfig, __version__, train
from spatialmix_cli.cli.app import app, main
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.targets import expand_targets, paths_from_stdin

from conftest import json_lines, make_folder, tiny_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tiny finished runs (each well under a second): full, chans at 16 px, and un-shuffling."""
    root = tmp_path_factory.mktemp("eval-info")
    unshuffle = TrainConfig.from_dict(
        dict(
            task="unshuffle",
            arch="convmixer_unshuffle",
            dataset="synthetic",
            width=8,
            depth=1,
            kernel=3,
            subset=128,
            test_subset=32,
            epochs=1,
            batch_size=64,
            device="cpu",
            learn="chans",
            logger="none",
        )  # fmt: skip
    )
    configs = {"full": tiny_config(), "chans16": tiny_config(learn="chans", image_size=16),
               "unshuffle": unshuffle}  # fmt: skip
    for name, cfg in configs.items():
        train(cfg, root / name)
    return {name: root / name for name in configs}


def _result(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


def _stdin(args: list[str], text: str):
    """The CLI with ``text`` on stdin."""
    return CliRunner().invoke(app, args, input=text, catch_exceptions=False)


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_eval_scores_the_images_training_scored(cli, runs) -> None:
    """With n = the run's test_subset (the whole synthetic test set it drew), eval reproduces the test
    loss and accuracy the trainer recorded: the same images, the same evaluate()."""
    result = cli("eval", runs["full"], runs["chans16"], "--json")
    assert result.exit_code == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [line["checkpoint"] for line in lines] == [
        str(runs[k] / "model.safetensors") for k in ("full", "chans16")
    ]
    for line, name in zip(lines, ("full", "chans16"), strict=True):
        stored = _result(runs[name])
        assert line["n"] == 64 and line["task"] == "classify" and "psnr" not in line
        assert line["acc"] == pytest.approx(stored["test_acc"]) and line["loss"] == pytest.approx(
            stored["test_loss"]
        )
        assert (line["arch"], line["learn"], line["dataset"]) == ("convmixer", stored["learn"], "synthetic")


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_eval_n_takes_the_first_n_and_the_table_goes_to_stdout(cli, runs) -> None:
    result = cli("eval", runs["full"], "--n", "10", "--batch-size", "3")
    assert result.exit_code == 0, result.stderr
    assert "clean test metrics" in result.stdout and "synthetic" in result.stdout
    assert "clean test metrics" not in result.stderr
    line = json_lines(cli("eval", runs["full"], "--n", "10", "--json").stdout)[0]
    assert line["n"] == 10 and math.isclose(line["acc"] * 10, round(line["acc"] * 10))
    assert json_lines(cli("eval", runs["full"], "--n", "1000", "--json").stdout)[0]["n"] == 64  # all there is


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_eval_of_an_unshuffle_checkpoint_is_its_psnr(cli, runs) -> None:
    line = json_lines(cli("eval", runs["unshuffle"], "--json").stdout)[0]
    stored = _result(runs["unshuffle"])
    assert line["task"] == "unshuffle" and "acc" not in line and line["n"] == 32
    assert line["psnr"] == pytest.approx(stored["test_psnr"]) and line["loss"] == pytest.approx(
        stored["test_loss"]
    )


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_a_bad_checkpoint_fails_before_any_is_evaluated(cli, runs) -> None:
    result = cli("eval", runs["full"], runs["full"] / "result.json", "--json")
    assert result.exit_code == 2 and result.stdout == "" and "not a readable safetensors" in result.stderr


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_train_json_piped_into_eval(runs) -> None:
    records = "".join(json.dumps(_result(runs[k])) + "\n" for k in ("full", "chans16"))
    result = _stdin(["eval", "-", "--json"], records)
    assert result.exit_code == 0, result.stderr
    assert [line["learn"] for line in json_lines(result.stdout)] == ["full", "chans"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["eval", "nope"], "", "checkpoint not found: nope"),
        (["eval", "RUN", "--n", "0"], "", "--n must be at least 1"),
        (["eval", "-"], "\n\n", "no checkpoints given (stdin had none)"),
        (["info", "-"], '{"test_acc": 0.5}\n', "stdin line 1 is a JSON record without"),
        (["info", "-"], "{oops\n", "stdin line 1 starts with '{' but is not JSON"),
        (["info", "RUN/result.json"], "", "not a readable safetensors file"),
    ],
)
@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_bad_input_is_one_error_line(runs, args: list[str], stdin: str, message: str) -> None:
    result = _stdin([a.replace("RUN", str(runs["full"])) for a in args], stdin)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_info_describes_a_checkpoint_without_loading_data(cli, runs, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_data(*args, **kwargs):
        raise AssertionError("info loaded data")

    monkeypatch.setattr("spatialmix_cli.data.sources.load_dataset", no_data)
    monkeypatch.setattr("spatialmix_cli.data.sources.make_synthetic", no_data)
    result = cli("info", runs["chans16"], runs["full"] / "last.safetensors", "--json")
    assert result.exit_code == 0, result.stderr
    chans, last = json_lines(result.stdout)
    stored = _result(runs["chans16"])
    assert (chans["arch"], chans["learn"], chans["filters"], chans["dataset"]) == (
        "convmixer",
        "chans",
        "random",
        "synthetic",
    )
    assert chans["image_size"] == 16 and chans["classes"] == 10 and chans["kind"] == "model"
    assert chans["epochs_trained"] == chans["epochs"] == 2 and chans["result"] == stored
    assert chans["model_kwargs"]["width"] == 16 and chans["model_kwargs"]["learn"] == "chans"
    params = chans["params"]
    assert (
        params["params_trainable"] == stored["params_trainable"]
        and params["params_frozen"] == stored["params_frozen"]
    )
    assert params["by_type"]["spatial"]["trainable"] == 0 and params["by_type"]["spatial"]["frozen"] > 0
    assert last["kind"] == "train_state" and last["learn"] == "full" and last["params"]["params_frozen"] == 0


@pytest.mark.slow  # the runs fixture; fast: test_output_streams (eval)
def test_info_table_and_stdin_paths(runs) -> None:
    result = _stdin(["info", "-"], f"{runs['full']}\n")
    assert result.exit_code == 0 and "epochs trained" not in result.stderr, (
        result.stderr
    )  # the result: stdout
    assert "epochs trained" in result.stdout and "spatial" in result.stdout and "2 of 2" in result.stdout


def test_paths_from_stdin_reads_paths_and_run_records(tmp_path: Path) -> None:
    text = 'a/model.safetensors\n\n  b  \n{"checkpoint": "c/model.safetensors", "run_dir": "c"}\n{"run_dir": "d"}\n'
    assert paths_from_stdin(io.BytesIO(text.encode())) == [
        Path("a/model.safetensors"),
        Path("b"),
        Path("c/model.safetensors"),
        Path("d"),
    ]
    assert paths_from_stdin(io.StringIO("e\r\n")) == [Path("e")]  # a text stream too
    assert paths_from_stdin(None) == []  # stdin closed
    stdin = io.BytesIO(b"y\n")
    expanded = expand_targets(["x", "-", "-"], stdin)
    assert expanded == [Path("x"), Path("y")] and stdin.read() == b""  # stdin is read once
    with pytest.raises(ConfigError, match="no checkpoints given"):
        expand_targets([], io.BytesIO())
    with pytest.raises(ConfigError, match="line 2 .* without"):
        paths_from_stdin(io.BytesIO(b'x\n{"checkpoint": null}\n'))


def test_version_and_the_bare_command(
    cli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = cli("--version")
    assert version.exit_code == 0 and version.stdout.startswith(f"spatialmix {__version__} (torch ")
    assert re.search(r"torch \d+\.\d+", version.stdout)
    bare = cli()
    assert (
        bare.exit_code == 0
        and "Usage" in bare.stdout
        and "eval" in bare.stdout
        and "error" not in bare.stderr
    )
    monkeypatch.setattr(
        sys, "argv", ["spatialmix"]
    )  # the console script's path (usage errors go through main)
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr()
    assert exited.value.code == 0 and "Usage" in out.out and "error" not in out.err


def test_completion_and_image_size_options_are_offered(cli) -> None:
    assert "--install-completion" in cli("--help").stdout
    assert "--image-size" in cli("train", "--help").stdout


def test_eval_of_an_imagefolder_run_finds_its_folder(cli, tmp_path: Path) -> None:
    """An ImageFolder run's val/ split, found through the data_dir the checkpoint records (no --data-dir)."""
    make_folder(tmp_path / "data")
    cfg = tiny_config(dataset="imagenet", data_dir=str(tmp_path / "data"), image_size=32, workers=0,
                      batch_size=8, subset=None, test_subset=None, epochs=1)  # fmt: skip
    stored = train(cfg, tmp_path / "run")
    line = json_lines(cli("eval", tmp_path / "run", "--json").stdout)[0]
    assert line["dataset"] == "imagenet" and line["n"] == 12
    assert line["acc"] == pytest.approx(stored.test_acc) and line["loss"] == pytest.approx(stored.test_loss)
    assert json_lines(cli("eval", tmp_path / "run", "--n", "5", "--json").stdout)[0]["n"] == 5
