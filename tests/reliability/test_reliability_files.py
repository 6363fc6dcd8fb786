"""Reliability, round two: planted links, files a checkpoint names, files that block, and torn writes.

Each case is a row of docs/reliability.md (classes 1, 2, 3 and 5 of issue #18); keep the two in step.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import save_file

from spatialmix_cli.analysis.reporting import load_runs
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.store.checkpoint import read_metadata, read_tensors
from spatialmix_cli.training.loop import train

from conftest import tiny_config

VICTIM = "a file outside the output folder\n"
_TINY = ["--dataset", "synthetic", "--set", "subset=64", "--set", "test_subset=32", "--width", "8", "--depth", "1",
         "--set", "kernel=3", "--set", "patch=4", "--epochs", "1", "--learn", "chans", "--device", "cpu",
         "--logger", "none"]  # fmt: skip
_ATTACK = [
    "--method",
    "fgsm",
    "--eps",
    "1/255",
    "--n",
    "16",
    "--batch-size",
    "16",
    "--no-checks",
    "--device",
    "cpu",
]
_BASE = "base: {dataset: synthetic, subset: 64, test_subset: 32, width: 8, depth: 1, kernel: 3, patch: 4, epochs: 1, device: cpu, logger: none}\n"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("good") / "run"
    train(tiny_config(epochs=1, learn="chans", subset=64, test_subset=32), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def unshuffle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = TrainConfig.from_dict(dict(task="unshuffle", arch="convmixer_unshuffle", dataset="synthetic", width=8,
                                     depth=1, kernel=3, subset=64, test_subset=16, epochs=1, batch_size=32,
                                     device="cpu", logger="none"))  # fmt: skip
    run_dir = tmp_path_factory.mktemp("unshuffle") / "run"
    train(cfg, run_dir)
    return run_dir


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the one the command runs in, holding a file that must never change."""
    folder = tmp_path_factory.mktemp("elsewhere")
    (folder / "victim.txt").write_text(VICTIM)
    (folder / "keep.png").write_bytes(b"not the report's")
    return folder


def _untouched(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["keep.png", "victim.txt"], list(folder.iterdir())
    assert (folder / "victim.txt").read_text() == VICTIM
    assert (folder / "keep.png").read_bytes() == b"not the report's"


def _copy_run(dest: Path, good: Path) -> Path:
    dest.mkdir()
    for f in good.iterdir():
        if f.is_file():
            (dest / f.name).write_bytes(f.read_bytes())
    return dest


def _refused(result: Any, message: str, code: int = 2) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.stderr
    assert lines and lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------------------------
# 1. Writes never follow a planted link out of the output folder.


def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_untouched(
    cli, tmp_path: Path, elsewhere: Path
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(elsewhere / "victim.txt")
    _refused(cli("train", *_TINY, "--out", "run"), "symbolic link")
    _untouched(elsewhere)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_a_recipe_out_that_is_a_link_out_of_the_folder_is_refused(
    cli, tmp_path: Path, elsewhere: Path
) -> None:
    (tmp_path / "linked").symlink_to(elsewhere)
    (tmp_path / "r.yaml").write_text(_BASE + "out: linked\nsweep: {seed: [0]}\n")
    _refused(cli("train", "--recipe", "r.yaml"), "symbolic link")
    _untouched(elsewhere)
    # a run directory shipped as a link inside a real output folder is refused too
    (tmp_path / "r.yaml").write_text(_BASE + "out: runs/r\nsweep: {seed: [0]}\n")
    (tmp_path / "runs" / "r").mkdir(parents=True)
    (tmp_path / "runs" / "r" / "seed-0").symlink_to(elsewhere)
    _refused(cli("train", "--recipe", "r.yaml"), "outside")
    _untouched(elsewhere)
    # --out on the command line is the user's choice, a link included
    ok = cli("train", "--recipe", "r.yaml", "--out", "linked", "--list")
    assert ok.exit_code == 0, ok.stderr


def test_an_attacks_jsonl_planted_as_a_link_is_refused_before_the_attack(
    cli, tmp_path: Path, good_run: Path, elsewhere: Path
) -> None:
    run = _copy_run(tmp_path / "run", good_run)
    (run / "attacks.jsonl").symlink_to(elsewhere / "victim.txt")
    result = cli("attack", run / "model.safetensors", *_ATTACK)
    _refused(result, "symbolic link")
    assert "robust accuracy" not in result.stderr  # refused before any attack ran
    _untouched(elsewhere)


def test_a_report_whose_figures_folder_links_out_writes_and_removes_nothing_there(
    cli, tmp_path: Path, good_run: Path, elsewhere: Path
) -> None:
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "figures").symlink_to(elsewhere)
    _refused(cli("report", good_run, "--out", "report", "--format", "md", "--draws", "1"), "outside")
    _untouched(elsewhere)


# --------------------------------------------------------------------------------------------------------
# 2. Loading a checkpoint never decides where files are written, nor turns a download on.


def _relabel_as_cifar(src: Path, dest: Path, data_dir: Path) -> Path:
    """``src`` with metadata that says: CIFAR-10, data in ``data_dir``, downloads allowed."""
    meta = read_metadata(src)
    meta["config"].update(dataset="cifar10", data_dir=str(data_dir), download=True)
    meta["dataset"] = dataset_info("cifar10").to_dict()  # the synthetic data is CIFAR-shaped
    tensors = {k: v.contiguous() for k, v in read_tensors(src).items()}
    save_file(tensors, str(dest), metadata={"spatialmix": json.dumps(meta), "format": "pt"})
    return dest


@pytest.fixture
def downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every folder torchvision is asked to download CIFAR into (nothing is fetched: it fails offline)."""
    import torchvision.datasets.cifar as cifar

    asked: list[str] = []

    def fake(url: str, download_root: str, *args: Any, **kwargs: Any) -> None:
        asked.append(str(Path(download_root).resolve()))
        raise RuntimeError("offline (test)")

    monkeypatch.setattr(cifar, "download_and_extract_archive", fake)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SPATIALMIX_DATA", raising=False)
    return asked


@pytest.mark.parametrize("command", ["unshuffle --eval", "attack"])
def test_a_checkpoints_stored_data_dir_is_never_created_nor_downloaded_into(
    cli, tmp_path: Path, good_run: Path, unshuffle_run: Path, downloads: list[str], command: str
) -> None:
    hint = tmp_path / "etc"  # stands for `config.data_dir: /etc`
    src = unshuffle_run if command.startswith("unshuffle") else good_run
    ckpt = _relabel_as_cifar(src / "model.safetensors", tmp_path / "ckpt.safetensors", hint)
    extra = _ATTACK if command == "attack" else []
    _refused(cli(*command.split(), ckpt, *extra), "cifar10 not found")
    assert not hint.exists(), "a folder named by the checkpoint was created"
    assert downloads and all(not d.startswith(str(hint.resolve())) for d in downloads), downloads
    assert all(d.startswith(str((tmp_path / "cache").resolve())) for d in downloads), downloads


def test_unshuffle_eval_honours_no_download_whatever_the_checkpoint_says(
    cli, tmp_path: Path, unshuffle_run: Path, downloads: list[str]
) -> None:
    ckpt = _relabel_as_cifar(
        unshuffle_run / "model.safetensors", tmp_path / "c.safetensors", tmp_path / "etc"
    )
    _refused(cli("unshuffle", "--eval", ckpt, "--no-download"), "cifar10 not found")
    assert downloads == [] and not (tmp_path / "etc").exists()


# --------------------------------------------------------------------------------------------------------
# 3. Nothing blocks: a FIFO is refused without being waited on; a huge sweep is refused before expanding.


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result, or a test failure if it has not returned after ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


# In a child process: a reader stuck on a FIFO inside safetensors holds the GIL, so no thread of the test
# could even notice; the child is killed instead.
@pytest.mark.slow
@pytest.mark.parametrize("command", ["attack", "spectrum", "unshuffle --eval", "train --recipe"])
def test_a_fifo_given_as_a_checkpoint_or_recipe_is_refused_without_blocking(
    tmp_path: Path, command: str
) -> None:
    fifo = tmp_path / ("r.yaml" if command.startswith("train") else "model.safetensors")
    os.mkfifo(fifo)
    try:
        code, err = _spawn([*command.split(), fifo.name], tmp_path, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`spatialmix {command} {fifo.name}` blocked on the FIFO for 120 s")
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("error: ") and "FIFO" in lines[-1], err


@pytest.mark.parametrize("command", ["attack", "spectrum", "unshuffle --eval", "train --recipe"])
def test_a_path_longer_than_a_file_name_may_be_is_a_clean_error(cli, command: str) -> None:
    _refused(cli(*command.split(), "n" * 300), "too long")


def _spawn(args: list[str], cwd: Path, prelude: str = "", timeout: float = 300) -> tuple[int, str]:
    """``spatialmix ARGS`` in a child process (``prelude`` runs first, to plant a fault): (exit code, stderr)."""
    code = f"{prelude}\nimport sys\nfrom spatialmix_cli.cli.app import main\nsys.argv = ['spatialmix', *{args!r}]\nmain()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    return done.returncode, done.stderr


def _grid_recipe(path: Path, axes: int, values: int = 10) -> None:
    keys = ["seed", "lr", "epochs", "batch_size", "weight_decay", "label_smoothing", "eval_every", "log_every",
            "momentum"][:axes]  # fmt: skip
    sweep = {k: list(range(1, values + 1)) if k not in ("lr", "weight_decay", "momentum", "label_smoothing")
             else [round(0.01 * (i + 1), 3) for i in range(values)] for k in keys}  # fmt: skip
    path.write_text(_BASE + "sweep: " + json.dumps(sweep) + "\n")


def test_a_sweep_of_a_billion_points_is_refused_at_once_naming_the_cap_and_why(cli, tmp_path: Path) -> None:
    _grid_recipe(tmp_path / "r.yaml", axes=9)
    result = _within(60, lambda: cli("train", "--recipe", "r.yaml", "--list"))
    _refused(result, "1,000,000,000 points, more than the 10,000 a recipe may have")
    assert "each point is a training run" in result.stderr


@pytest.mark.slow  # lists 10^4 points; the billion-point refusal above checks the sweep-size path fast
def test_listing_a_sweep_of_ten_thousand_points_is_quick(cli, tmp_path: Path) -> None:
    _grid_recipe(tmp_path / "r.yaml", axes=4)
    started = time.perf_counter()
    result = _within(60, lambda: cli("train", "--recipe", "r.yaml", "--list"))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 10_000
    assert time.perf_counter() - started < 60


def test_list_and_index_build_no_model_per_point(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spatialmix_cli.models as models

    built, real = [], models.create_model
    monkeypatch.setattr(models, "create_model", lambda *a, **k: built.append(1) or real(*a, **k))
    _grid_recipe(tmp_path / "r.yaml", axes=2)  # 100 points
    listed = cli("train", "--recipe", "r.yaml", "--list")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 100
    assert len(built) <= 4, f"--list built {len(built)} models"  # the base and the grid, on two reads
    built.clear()
    chosen = cli("train", "--recipe", "r.yaml", "--index", "57", "--dry-run", "--json")
    assert chosen.exit_code == 0, chosen.stderr
    assert len(built) <= 6, f"--index built {len(built)} models"  # + the chosen point's check and report


def test_list_of_many_grids_builds_no_model_per_grid(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spatialmix_cli.models as models

    built, real = [], models.create_model
    monkeypatch.setattr(models, "create_model", lambda *a, **k: built.append(1) or real(*a, **k))
    grids = "".join(f"  - {{grid: g{i}, seed: {i}}}\n" for i in range(50))
    (tmp_path / "r.yaml").write_text("base: {dataset: synthetic, epochs: 1}\nsweep:\n" + grids)
    listed = cli("train", "--recipe", "r.yaml", "--list")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 50, listed.stderr
    assert len(built) <= 4, f"--list of 50 grids built {len(built)} models"


# --------------------------------------------------------------------------------------------------------
# 5. Torn writes: figures are renamed into place; a torn JSONL line never swallows the next one.

# The child writes the first 6 bytes of whatever savefig is given (a file, or the memory buffer a figure is
# rendered into), then kills itself: a SIGKILL while the report rewrites its first figure.
_KILL_IN_SAVEFIG = """
import os, signal
from matplotlib.figure import Figure
def _savefig(self, fname, *args, **kwargs):
    if hasattr(fname, "write"):
        fname.write(b"\\x89PNG\\r\\n")
    else:
        with open(fname, "wb") as f:
            f.write(b"\\x89PNG\\r\\n")
    os.kill(os.getpid(), signal.SIGKILL)
Figure.savefig = _savefig
"""


def _whole_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND"


@pytest.mark.slow
def test_sigkill_while_report_rewrites_a_figure_leaves_every_linked_image_whole(
    cli, tmp_path: Path, good_run: Path
) -> None:
    args = ["report", str(good_run), "--out", "report", "--format", "md", "--draws", "1"]
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    code, err = _spawn(args, tmp_path, _KILL_IN_SAVEFIG)
    assert code == -signal.SIGKILL, err
    md = (tmp_path / "report" / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert images
    for rel in images:
        assert _whole_png((tmp_path / "report" / rel).read_bytes()), f"{rel} is cut short"
    assert not [p for p in (tmp_path / "report" / "figures").glob("*.png") if not _whole_png(p.read_bytes())]


def test_an_attack_after_a_torn_line_starts_a_new_one_and_report_names_the_torn_one(
    cli, tmp_path: Path, good_run: Path
) -> None:
    run = _copy_run(tmp_path / "run", good_run)
    torn = '{"checkpoint": "x", "method": "fgsm", "eps": 0.003'  # a killed writer's last line
    (run / "attacks.jsonl").write_text(torn)
    result = cli("attack", run / "model.safetensors", *_ATTACK)
    assert result.exit_code == 0, result.stderr
    lines = (run / "attacks.jsonl").read_text().split("\n")
    assert lines[0] == torn and json.loads(lines[1])["method"] == "fgsm" and lines[2] == ""
    runs, skipped = load_runs([run])
    assert len(runs[0].attacks) == 1
    assert any("attacks.jsonl" in s and "line 1" in s for s in skipped), skipped


def test_a_full_disk_during_an_attack_append_is_a_clear_error_and_the_next_append_is_whole(
    cli, tmp_path: Path, good_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _copy_run(tmp_path / "run", good_run)
    real_write = os.write

    def nearly_full(fd: int, data: bytes) -> int:  # write(2) on a nearly full disk: part of it, then ENOSPC
        if os.readlink(f"/proc/self/fd/{fd}").endswith("attacks.jsonl"):
            return real_write(fd, data[: len(data) // 2])
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", nearly_full)
    _refused(cli("attack", run / "model.safetensors", *_ATTACK), "could not append", code=1)
    monkeypatch.setattr(os, "write", real_write)
    again = cli("attack", run / "model.safetensors", *_ATTACK)
    assert again.exit_code == 0, again.stderr
    runs, skipped = load_runs([run])
    assert len(runs[0].attacks) == 1 and runs[0].attacks[0]["method"] == "fgsm"
    assert any("attacks.jsonl" in s and "line 1" in s for s in skipped), skipped
