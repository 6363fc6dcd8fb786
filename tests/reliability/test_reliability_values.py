"""Reliability, round two: bad weights and values are errors (class 6 of issue #18), and every bad input is
exit 2 with one ``error:`` line and no half-made run folder, exit 1 only for real faults (class 7).

Each case is a row of docs/reliability.md; keep the two in step.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from spatialmix_cli.store.checkpoint import read_metadata, read_tensors
from spatialmix_cli.training.loop import train

from conftest import tiny_config

_TINY = ["--dataset", "synthetic", "--set", "subset=64", "--set", "test_subset=32", "--width", "8", "--depth", "1",
         "--set", "kernel=3", "--set", "patch=4", "--epochs", "1", "--learn", "chans", "--device", "cpu",
         "--logger", "none"]  # fmt: skip
_ATTACK = ["--method", "fgsm", "--n", "16", "--batch-size", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("good") / "run"
    train(tiny_config(epochs=1, learn="chans", width=8, depth=1, subset=64, test_subset=32), run_dir)
    return run_dir


def _listing(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def _refused(cli: Callable[..., Any], tmp_path: Path, args: list[Any], message: str, code: int = 2) -> None:
    """One ``error:`` line naming ``message``, exit ``code``, clean stdout, and nothing on disk changed."""
    before = _listing(tmp_path)
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0] and message in lines[0], lines[0]
    assert result.stdout == ""
    assert _listing(tmp_path) == before, "a refused command changed files on disk"


def _variant(tmp: Path, good: Path, *, tensors: Callable[[dict], None] | None = None,
             meta: Callable[[dict], None] | None = None) -> Path:  # fmt: skip
    """A copy of the good checkpoint with its tensors or metadata edited, as ``tmp/ckpt.safetensors``."""
    src, path = good / "model.safetensors", tmp / "ckpt.safetensors"
    found, info = read_tensors(src), read_metadata(src)
    if tensors:
        tensors(found)
    if meta:
        meta(info)
    save_file(
        {k: v.contiguous() for k, v in found.items()}, str(path), metadata={"spatialmix": json.dumps(info)}
    )
    return path


def _floats(fill: Callable[[torch.Tensor], torch.Tensor], only: str = "") -> Callable[[dict], None]:
    def edit(found: dict) -> None:
        for key, value in found.items():
            if value.is_floating_point() and only in key:
                found[key] = fill(value)

    return edit


# --------------------------------------------------------------------------------------------------------
# 6. Bad weights and values are errors, never a run at chance with "all masking checks passed".

BAD_WEIGHTS: dict[str, tuple[dict[str, Any], str]] = {
    "nan-weights": ({"tensors": _floats(lambda v: torch.full_like(v, float("nan")))}, "NaN or Inf"),
    "inf-weight": ({"tensors": _floats(lambda v: torch.full_like(v, float("inf")), "head")}, "NaN or Inf"),
    "int8-weights": ({"tensors": _floats(lambda v: v.to(torch.int8))}, "is int8 in the file"),
    "bool-weights": ({"tensors": _floats(lambda v: v.bool())}, "is bool in the file"),
    "normalize-std-zero": ({"tensors": _floats(torch.zeros_like, "normalize.std")}, "must be > 0"),
    "negative-running-var": ({"tensors": _floats(lambda v: -v - 1, "running_var")}, "running_var"),
    "rgb-model-on-1-channel-data": (
        {"meta": lambda m: m["dataset"].update(name="mnist", in_chans=1, mean=[0.5], std=[0.25])},
        "the model has in_chans 3 but its dataset 'mnist' has 1",
    ),
    "class-count-mismatch": ({"meta": lambda m: m["dataset"].update(num_classes=100)}, "num_classes"),
}


@pytest.mark.parametrize("command", ["attack", "spectrum"])
@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_bad_weights_are_refused(cli, tmp_path: Path, good_run: Path, command: str, case: str) -> None:
    edits, message = BAD_WEIGHTS[case]
    path = _variant(tmp_path, good_run, **edits)
    args = [command, path, *(_ATTACK if command == "attack" else [])]
    _refused(cli, tmp_path, args, message)


def test_the_bad_weight_checks_pass_every_real_checkpoint(good_run: Path) -> None:
    from spatialmix_cli.store.checkpoint import load_checkpoint

    assert load_checkpoint(good_run / "model.safetensors").model is not None
    assert load_checkpoint(good_run / "last.safetensors").model is not None


def _recipe(tmp: Path, text: str) -> list[str]:
    (tmp / "r.yaml").write_text(text)
    return ["train", "--recipe", "r.yaml", "--list"]


BAD_VALUES: dict[str, tuple[Callable[[Path, Path], list[Any]], str]] = {
    "method-comma-only": (
        lambda t, g: ["attack", g / "model.safetensors", "--method", ","],
        "at least one method",
    ),
    "method-empty-list": (
        lambda t, g: _recipe(t, "base: {dataset: synthetic}\nattack: {method: []}\n"),
        "attack.methods must be one of",
    ),
    "duplicate-yaml-key": (
        lambda t, g: _recipe(t, "base: {epochs: 1, epochs: 2}\n"),
        "duplicate key 'epochs'",
    ),
    "recipe-name-dotdot": (lambda t, g: _recipe(t, "name: '..'\nbase: {epochs: 1}\n"), "not '.' or '..'"),
    "recipe-name-dot": (lambda t, g: _recipe(t, "name: .\nbase: {epochs: 1}\n"), "not '.' or '..'"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values_are_refused(cli, tmp_path: Path, good_run: Path, case: str) -> None:
    make, message = BAD_VALUES[case]
    _refused(cli, tmp_path, make(tmp_path, good_run), message)


# --------------------------------------------------------------------------------------------------------
# 7. No internal error where a clean one is promised; no half-made run folder.

BAD_RUNS: dict[str, tuple[list[str], str]] = {
    "device-mps": (["--device", "mps"], "--device mps"),
    "device-cuda-index": (["--device", "cuda:7"], "--device cuda:7"),
    "device-garbage": (["--device", "tpu"], "device must be"),
    "seed-above-2-64": (["--seed", "18446744073709551616"], "seed"),
    "out-name-too-long": (["--out", "x" * 300], "255"),
    "patch-larger-than-image": (["--set", "patch=64"], "cannot run on the 32x32 images"),
    "patch-larger-than-a-resized-image": (
        ["--set", "image_size=8", "--set", "patch=16"],
        "cannot run on the 8x8",
    ),
    "kernel-beyond-its-feature-map": (
        ["--set", "kernel=99"],
        "larger than the 15x15 taps that can reach its 8x8",
    ),
    "lr-1e300": (["--lr", "1e300"], "at most 1e+30"),
    "weight-decay-1e300": (["--set", "weight_decay=1e300"], "at most 1e+30"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_training_options_are_one_clean_line_and_make_no_folder(cli, tmp_path: Path, case: str) -> None:
    extra, message = BAD_RUNS[case]
    args = ["train", *_TINY, *extra]
    if "--out" not in extra:
        args += ["--out", "runs/new/run"]
    _refused(cli, tmp_path, args, message)
    assert not (tmp_path / "runs").exists(), "a refused run left a folder behind"


def test_a_large_but_finite_lr_that_diverges_says_so_and_exits_1(cli, tmp_path: Path) -> None:
    result = cli(
        "train",
        *_TINY,
        "--lr",
        "1e25",
        "--set",
        "weight_decay=0",
        "--set",
        "subset=128",
        "--out",
        "run",
        "--json",
    )
    line = result.stderr.strip().splitlines()[-1]
    assert result.exit_code == 1 and ("training loss became" in line or "became non-finite" in line), (
        result.stderr
    )


def _unfinished(tmp_path: Path, cli) -> Path:
    """An unfinished run: trained two epochs of three, then stopped (result and weights removed)."""
    run = tmp_path / "run"
    assert cli("train", *_TINY, "--epochs", "2", "--out", run).exit_code == 0
    for name in ("result.json", "model.safetensors"):
        (run / name).unlink()
    return run


PROGRESS_EDITS: dict[str, Callable[[dict], None]] = {
    "epoch-as-string": lambda m: m["progress"].update(epoch="1"),
    "step-negative": lambda m: m["progress"].update(step=-5),
    "global-step-float": lambda m: m["progress"].update(global_step=2.5),
    "seconds-nan-text": lambda m: m["progress"].update(seconds="nan"),
    "sums-a-list": lambda m: m["progress"].update(sums=[1, 2]),
    "sums-missing-count": lambda m: m["progress"].update(sums={"loss": 1.0, "score": 2.0}),
    "unknown-progress-field": lambda m: m["progress"].update(extra=1),
    "history-a-string": lambda m: m.update(history="abc"),
    "history-of-numbers": lambda m: m.update(history=[1, 2]),
    "epoch-beyond-the-run": lambda m: m["progress"].update(epoch=10**30),
}


def _edit_train_state(last: Path, edit: Any) -> None:
    """Rewrite ``last`` (a train state) with ``edit(meta, tensors)`` applied to its metadata and tensors."""
    with safe_open(str(last), "pt") as f:
        meta, tensors = json.loads(f.metadata()["spatialmix"]), {k: f.get_tensor(k) for k in f.keys()}
    edit(meta, tensors)
    save_file(tensors, str(last), metadata={"spatialmix": json.dumps(meta), "format": "pt"})


@pytest.mark.parametrize("case", list(PROGRESS_EDITS))
def test_resume_from_damaged_progress_fields_is_refused_and_keeps_metrics(
    cli, tmp_path: Path, case: str
) -> None:
    run = _unfinished(tmp_path, cli)
    last = run / "last.safetensors"
    _edit_train_state(last, lambda meta, tensors: PROGRESS_EDITS[case](meta))
    _refused(cli, tmp_path, ["train", *_TINY, "--epochs", "2", "--out", run, "--resume"], str(last))


def _finished_with_attack(tmp_path: Path, good: Path, cli) -> Path:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    for f in good.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    assert cli("attack", run / "model.safetensors", *_ATTACK, "--no-checks").exit_code == 0
    return run


def _good_attack_line(run: Path) -> dict[str, Any]:
    return json.loads((run / "attacks.jsonl").read_text().splitlines()[0])


DAMAGED_RECORDS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "result-a-list": ("result.json", lambda run: "[1, 2]"),
    "result-empty-object": ("result.json", lambda run: "{}"),
    "result-accuracy-text": (
        "result.json",
        lambda run: json.dumps({**json.loads((run / "result.json").read_text()), "test_acc": "high"}),
    ),
    "result-accuracy-above-1": (
        "result.json",
        lambda run: json.dumps({**json.loads((run / "result.json").read_text()), "test_acc": 7}),
    ),
}

DAMAGED_ATTACK_LINES: dict[str, Callable[[dict], Any]] = {
    "eps-text": lambda row: {**row, "eps": "big"},
    "robust-acc-null": lambda row: {**row, "robust_acc": None},
    "no-method": lambda row: {k: v for k, v in row.items() if k != "method"},
    "a-list": lambda row: [1, 2],
    "flags-a-number": lambda row: {**row, "flags": 3},
    "n-zero": lambda row: {**row, "n": 0},
}


@pytest.mark.parametrize("case", list(DAMAGED_RECORDS))
def test_report_over_a_damaged_result_leaves_the_run_out_and_says_why(
    cli, tmp_path: Path, good_run: Path, case: str
) -> None:
    run = _finished_with_attack(tmp_path, good_run, cli)
    name, text = DAMAGED_RECORDS[case]
    (run / name).write_text(text(run))
    result = cli("report", "runs", "--out", "rep", "--draws", "1")
    line = result.stderr.strip().splitlines()[-1]
    assert result.exit_code == 2 and line.startswith("error: no finished runs"), result.stderr
    assert f"damaged {name}" in line and "internal error" not in result.stderr


@pytest.mark.parametrize("case", list(DAMAGED_ATTACK_LINES))
@pytest.mark.slow  # trains and attacks (~4 s a case); fast: the damaged-result test
def test_report_over_damaged_attack_lines_keeps_the_whole_ones_and_names_the_rest(
    cli, tmp_path: Path, good_run: Path, case: str
) -> None:
    run = _finished_with_attack(tmp_path, good_run, cli)
    good = _good_attack_line(run)
    lines = [json.dumps(DAMAGED_ATTACK_LINES[case](good)), json.dumps(good)]
    (run / "attacks.jsonl").write_text("\n".join(lines) + "\n")
    result = cli("report", "runs", "--out", "rep", "--draws", "1", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert (
        "left out 1 damaged result" in json.dumps(summary)
        or "not whole JSON" in json.dumps(summary)
        or ("left out 1 damaged result" in result.stderr or "not whole JSON" in result.stderr)
    ), result.stderr


def test_a_full_disk_before_config_yaml_is_exit_1_and_leaves_no_folder(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    result = cli("train", *_TINY, "--out", "runs/full/run")
    monkeypatch.setattr(os, "fsync", real_fsync)
    line = result.stderr.strip().splitlines()[-1]
    assert result.exit_code == 1 and "No space left on device" in line and "free some space" in line, line
    assert not (tmp_path / "runs").exists(), "the failed run left a folder behind"


def test_an_output_under_a_read_only_folder_is_exit_2(cli, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    for args in (["train", *_TINY, "--out", locked / "run"], ["report", "nowhere", "--out", locked / "rep"]):
        result = cli(*args)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), result.stderr
        assert "internal error" not in result.stderr


# --------------------------------------------------------------------------------------------------------
# The second hostile round: work limits, optimizer state, hard links, finite-but-absurd weights.

WORK_LIMITS: dict[str, tuple[Callable[[Path], list[Any]], str]] = {
    "attack-steps": (lambda g: ["attack", g / "model.safetensors", "--method", "pgd", "--steps", "9223372036854775807"],
                     "--steps must be at most 10,000"),
    "attack-seed": (lambda g: ["attack", g / "model.safetensors", "--seed", "99999999999999999999999"], "--seed must be in [0, 2**63)"),
    "attack-seed-negative": (lambda g: ["attack", g / "model.safetensors", "--seed", "-5"], "--seed must be in [0, 2**63)"),
    "adv-steps": (lambda g: ["train", *_TINY, "--set", "adv=pgd", "--set", "adv_steps=1000000000", "--out", "k"], "adv_steps must be at most"),
    "perm-seed": (lambda g: ["unshuffle", "--dataset", "synthetic", "--perm-seed", "18446744073709551616", "--out", "u"],
                  "perm_seed must be in [0, 2**63)"),
    "spectrum-draws": (lambda g: ["spectrum", "--random", "4", "--kernel", "3", "--pad", "16", "--draws", "1000000000"],
                       "--draws must be at most"),
    "spectrum-multiplier": (lambda g: ["spectrum", "--random", "4", "--kernel", "3", "--pad", "16", "--multiplier", "1099511627776"],
                            "--multiplier must be at most"),
    "smooth-sigma-tiny": (lambda g: ["train", *_TINY, "--filters", "smooth:1e-30", "--out", "k"],
                          "smooth:σ must be in"),
    "smooth-sigma-huge": (lambda g: ["spectrum", "--random", "4", "--kernel", "3", "--pad", "16", "--filters", "smooth:1e30"],
                          "smooth:σ must be in"),
    "report-draws": (lambda g: ["report", g, "--out", "rep", "--draws", "1000000000"], "--draws must be at most"),
    "bench-learn-comma": (lambda g: ["bench", "--learn", ",", "--out", "b.json"], "at least one learn mode"),
    "bench-peak-nan": (lambda g: ["bench", "--peak-gflops", "nan", "--out", "b.json"], "--peak-gflops must be"),
    "bench-batch": (lambda g: ["bench", "--batch-size", "100000000", "--out", "b.json"], "--batch-size must be at most"),
    "bench-iters": (lambda g: ["bench", "--iters", "1000000000", "--out", "b.json"], "--iters must be at most"),
    "image-size-1": (lambda g: ["unshuffle", "--dataset", "synthetic", "--image-size", "1", "--out", "u"], "at least 4 pixels"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WORK_LIMITS))
def test_requests_for_endless_work_or_impossible_values_are_refused_at_once(
    cli, tmp_path: Path, good_run: Path, case: str
) -> None:
    make, message = WORK_LIMITS[case]
    _refused(cli, tmp_path, make(good_run), message)


OPTIMIZER_EDITS: dict[str, tuple[Callable[[dict, dict], None], str]] = {
    "step-negative": (lambda m, t: t.update({"__optim__.0.step": -5 * torch.ones_like(t["__optim__.0.step"])}),
                      "negative"),
    "second-moment-negative": (lambda m, t: t.update({"__optim__.0.exp_avg_sq": -torch.ones_like(t["__optim__.0.exp_avg_sq"])}),
                               "negative"),
    "moment-nan": (lambda m, t: t.update({"__optim__.0.exp_avg": torch.full_like(t["__optim__.0.exp_avg"], float("nan"))}),
                   "NaN"),
    "betas-one": (lambda m, t: m["optimizer"]["param_groups"][0].update(betas=[1, 1]), "betas"),
    "amsgrad-on": (lambda m, t: m["optimizer"]["param_groups"][0].update(amsgrad=True), "amsgrad"),
    "eps-nan-text": (lambda m, t: m["optimizer"]["param_groups"][0].update(eps="nan"), "eps"),
    "weight-decay-negative": (lambda m, t: m["optimizer"]["param_groups"][0].update(weight_decay=-1e30), "weight_decay"),
    "param-groups-a-string": (lambda m, t: m["optimizer"].update(param_groups="x"), "param_groups"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OPTIMIZER_EDITS))
def test_resume_from_damaged_optimizer_state_is_refused_before_anything_is_rewritten(
    cli, tmp_path: Path, case: str
) -> None:
    run = _unfinished(tmp_path, cli)
    last = run / "last.safetensors"
    edit, message = OPTIMIZER_EDITS[case]
    _edit_train_state(last, edit)
    _refused(cli, tmp_path, ["train", *_TINY, "--epochs", "2", "--out", run, "--resume"], message)


def test_a_last_safetensors_that_is_a_fifo_is_refused_not_trained_over(cli, tmp_path: Path) -> None:
    run = _unfinished(tmp_path, cli)
    (run / "last.safetensors").unlink()
    os.mkfifo(run / "last.safetensors")
    _refused(
        cli, tmp_path, ["train", *_TINY, "--epochs", "2", "--out", run, "--resume"], "not a regular file"
    )


def test_an_attacks_jsonl_hard_linked_to_a_file_elsewhere_is_refused(
    cli, tmp_path: Path, good_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for f in good_run.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    outside = tmp_path_factory.mktemp("outside") / "victim.jsonl"
    outside.write_text("")
    os.link(outside, run / "attacks.jsonl")
    result = cli("attack", run / "model.safetensors", *_ATTACK, "--no-checks")
    assert result.exit_code == 2 and "hard links" in result.stderr, result.stderr
    assert outside.read_text() == ""


@pytest.mark.slow  # trains; fast: the hard-link test
def test_a_report_with_a_planted_link_among_its_files_rewrites_nothing(
    cli, tmp_path: Path, good_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert cli("report", good_run, "--out", "rep", "--draws", "1").exit_code == 0
    victim = tmp_path_factory.mktemp("outside") / "victim.json"
    victim.write_text("keep")
    (tmp_path / "rep" / "summary.json").unlink()
    (tmp_path / "rep" / "summary.json").symlink_to(victim)
    _refused(cli, tmp_path, ["report", good_run, "--out", "rep", "--draws", "1"], "symbolic link")
    assert victim.read_text() == "keep"


@pytest.mark.parametrize("edit", ["huge-stem", "tiny-std"])
def test_finite_weights_that_overflow_on_clean_images_are_refused(
    cli, tmp_path: Path, good_run: Path, edit: str
) -> None:
    fill = (
        (lambda v: torch.full_like(v, 3e38)) if edit == "huge-stem" else (lambda v: torch.full_like(v, 1e-45))
    )
    path = _variant(
        tmp_path, good_run, tensors=_floats(fill, "stem.0.weight" if edit == "huge-stem" else "normalize.std")
    )
    _refused(cli, tmp_path, ["attack", path, *_ATTACK], "NaN or Inf outputs on clean test images")


def test_a_train_state_written_with_the_old_sum_name_still_resumes(cli, tmp_path: Path) -> None:
    """States written before the running sum 'correct' was named 'score' resume as before."""
    run = _unfinished(tmp_path, cli)
    last = run / "last.safetensors"

    def rename(meta: dict, tensors: dict) -> None:
        sums = meta["progress"]["sums"]
        sums["correct"] = sums.pop("score")

    _edit_train_state(last, rename)
    result = cli("train", *_TINY, "--epochs", "2", "--out", run, "--resume", "--json")
    assert result.exit_code == 0, result.stderr
    assert (run / "model.safetensors").is_file()
