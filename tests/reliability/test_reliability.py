"""Bad input gets one clear line and changes nothing on disk; faults lose nothing; loading runs no code.

Each case here is a row of docs/reliability.md: keep the two in step.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from spatialmix_cli.store.checkpoint import load_model, read_metadata
from spatialmix_cli.training.loop import train

from conftest import disk_snapshot, tiny_config

# --------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr naming the problem and the fix, exit code 2, no traceback, nothing changed.


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run directory (model.safetensors, last.safetensors, config.yaml...)."""
    run_dir = tmp_path_factory.mktemp("good") / "run"
    train(tiny_config(epochs=1, learn="chans"), run_dir)
    return run_dir


def _recipe(tmp: Path, text: str) -> list[str]:
    (tmp / "r.yaml").write_text(text)
    return ["train", "--recipe", "r.yaml"]


_BASE = "base: {dataset: synthetic, subset: 64, test_subset: 32, width: 8, depth: 1, kernel: 3, patch: 4, epochs: 1, device: cpu, logger: none}\n"


def _checkpoint_variant(kind: str) -> Callable[[Path, Path], None]:
    """Write a bad checkpoint ``ckpt.safetensors`` into the test folder, made from the good one."""

    def make(tmp: Path, good: Path) -> None:
        path, src = tmp / "ckpt.safetensors", good / "model.safetensors"
        meta = read_metadata(src)
        tensors = load_model(src).state_dict()
        if kind == "zero-byte":
            path.write_bytes(b"")
        elif kind == "truncated":
            path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
        elif kind == "not-safetensors":
            torch.save({"weights": torch.zeros(3)}, path)  # a pickle: must be refused, never unpickled
        elif kind == "foreign":
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))  # no metadata at all
        elif kind == "unknown-model":
            meta["model"]["name"] = "vit_giant"
            save_file(dict(tensors), str(path), metadata={"spatialmix": json.dumps(meta)})
        elif kind == "shape-mismatch":
            meta["model"]["kwargs"]["kernel"] = 5
            save_file(dict(tensors), str(path), metadata={"spatialmix": json.dumps(meta)})
        elif kind == "damaged-metadata":
            save_file(dict(tensors), str(path), metadata={"spatialmix": "{not json"})
        elif kind == "hostile-size":
            meta["model"]["kwargs"]["depth"] = 10**9  # would hang or exhaust memory if built
            save_file(dict(tensors), str(path), metadata={"spatialmix": json.dumps(meta)})

    return make


CHECKPOINT_CASES = {
    "missing": ("missing.safetensors", "checkpoint not found"),
    "zero-byte": ("ckpt.safetensors", "not a readable safetensors file"),
    "truncated": ("ckpt.safetensors", "not a readable safetensors file"),
    "not-safetensors": ("ckpt.safetensors", "torch.save / pickle file"),
    "foreign": ("ckpt.safetensors", "not a spatialmix checkpoint"),
    "unknown-model": ("ckpt.safetensors", "does not know"),
    "shape-mismatch": ("ckpt.safetensors", "does not match model 'convmixer'"),
    "damaged-metadata": ("ckpt.safetensors", "damaged spatialmix metadata"),
    "hostile-size": ("ckpt.safetensors", "at most 4096"),
}


@pytest.mark.parametrize("command", ["attack", "spectrum", "unshuffle --eval"])
@pytest.mark.parametrize("kind", list(CHECKPOINT_CASES))
def test_bad_checkpoints(cli, tmp_path: Path, good_run: Path, command: str, kind: str) -> None:
    _checkpoint_variant(kind)(tmp_path, good_run)
    name, message = CHECKPOINT_CASES[kind]
    _assert_refused(cli, tmp_path, [*command.split(), name], message)


BAD_INPUTS: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    # recipes
    "recipe-unknown-key": (lambda t, g: _recipe(t, "base: {lrr: 0.1}\n"), "did you mean 'lr'"),
    "recipe-wrong-type": (lambda t, g: _recipe(t, "base: {epochs: three}\n"), "must be an integer"),
    "recipe-zero-lr": (lambda t, g: _recipe(t, "base: {lr: 0}\n"), "lr must be > 0"),
    "recipe-negative-lr": (lambda t, g: _recipe(t, "base: {lr: -0.1}\n"), "lr must be > 0"),
    "recipe-zero-epochs": (lambda t, g: _recipe(t, "base: {epochs: 0}\n"), "epochs must be > 0"),
    "recipe-negative-batch": (lambda t, g: _recipe(t, "base: {batch_size: -8}\n"), "batch_size must be > 0"),
    "recipe-unknown-arch": (lambda t, g: _recipe(t, "base: {arch: convmixr}\n"), "did you mean 'convmixer'"),
    "recipe-unknown-learn": (lambda t, g: _recipe(t, "base: {learn: chan}\n"), "did you mean 'chans'"),
    "recipe-unknown-filters": (lambda t, g: _recipe(t, "base: {filters: smoth}\n"), "did you mean 'smooth'"),
    "recipe-unknown-method": (
        lambda t, g: _recipe(t, _BASE + "attack: {method: [pgdd]}\n"),
        "did you mean 'pgd'",
    ),
    "recipe-sweep-unknown-key": (
        lambda t, g: _recipe(t, _BASE + "sweep: {widht: [8, 16]}\n"),
        "did you mean 'width'",
    ),
    "recipe-invalid-yaml": (lambda t, g: _recipe(t, "base: [unclosed\n"), "invalid YAML"),
    "recipe-bad-date": (lambda t, g: _recipe(t, "base: {seed: 2001-13-45}\n"), "invalid YAML"),
    "recipe-out-escapes": (lambda t, g: _recipe(t, _BASE + "out: ../../elsewhere\n"), "without '..'"),
    "recipe-out-absolute": (lambda t, g: _recipe(t, _BASE + "out: /tmp/elsewhere\n"), "relative path"),
    "recipe-name-escapes": (lambda t, g: _recipe(t, _BASE + "name: ../up\n"), "folder name"),
    "recipe-huge-depth": (lambda t, g: _recipe(t, "base: {depth: 1000000000}\n"), "at most 4096"),
    # attack options
    "eps-not-a-number": (lambda t, g: ["attack", g / "model.safetensors", "--eps", "abc"], "eps"),
    "eps-negative": (lambda t, g: ["attack", g / "model.safetensors", "--eps", "-1/255"], "eps"),
    "eps-above-1": (lambda t, g: ["attack", g / "model.safetensors", "--eps", "2"], "eps"),
    "steps-zero": (lambda t, g: ["attack", g / "model.safetensors", "--steps", "0"], "steps"),
    # data, output folder, device
    "dataset-absent-offline": (
        lambda t, g: [
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            "nodata",
            "--set",
            "download=false",
            "--out",
            "run",
        ],  # fmt: skip
        "FashionMNIST/raw/train-images-idx3-ubyte.gz",
    ),
    "out-has-another-config": (
        lambda t, g: ["train", *_TINY, "--width", "12", "--out", _copy_run(t, g)],
        "another config",
    ),
    "out-is-under-a-file": (
        lambda t, g: ["train", *_TINY, "--out", _touch(t / "afile") / "run"],
        "is a file, not a folder",
    ),
    "device-cuda-without-gpu": (lambda t, g: ["train", *_TINY, "--device", "cuda", "--out", "run"], "cuda"),
}

_TINY = ["--dataset", "synthetic", "--set", "subset=64", "--set", "test_subset=32", "--width", "16", "--depth", "2",
         "--set", "kernel=3", "--set", "patch=4", "--epochs", "1", "--learn", "chans",
         "--logger", "none"]  # fmt: skip


def _copy_run(tmp: Path, good: Path) -> Path:
    dest = tmp / "existing"
    dest.mkdir()
    for f in good.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


def _touch(path: Path) -> Path:
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(cli, tmp_path: Path, good_run: Path, case: str) -> None:
    if case == "device-cuda-without-gpu" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    make, message = BAD_INPUTS[case]
    _assert_refused(cli, tmp_path, make(tmp_path, good_run), message)


def _assert_refused(cli, tmp_path: Path, args: list, message: str) -> None:
    before = disk_snapshot(tmp_path)
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert disk_snapshot(tmp_path) == before, "a refused command changed files on disk"


def test_unwritable_output_folder(cli, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere; the file-in-the-way case covers this path")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _assert_refused(cli, tmp_path, ["train", *_TINY, "--out", locked / "run"], "cannot write to --out")


def test_debug_shows_the_traceback(cli, tmp_path: Path) -> None:
    from spatialmix_cli.errors import CheckpointError

    with pytest.raises(CheckpointError, match="checkpoint not found"):
        cli("attack", "missing.safetensors", "--debug")


# --------------------------------------------------------------------------------------------------------
# Faults: SIGKILL at any moment, SIGTERM, a diverging loss, a full disk. Nothing is lost; resume is exact.

FAULT_ARGS = [*_TINY, "--set", "subset=384", "--epochs", "4", "--batch-size", "32", "--seed", "3"]


def _spawn(args: list[str], cwd: Path, prelude: str = "") -> subprocess.Popen:
    """``spatialmix ARGS`` in a real child process; ``prelude`` runs first (to plant a fault)."""
    code = f"{prelude}\nimport sys\nfrom spatialmix_cli.cli.app import main\nsys.argv = ['spatialmix', *{args!r}]\nmain()"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _finish(args: list[str], cwd: Path, prelude: str = "") -> tuple[int, str, str]:
    proc = _spawn(args, cwd, prelude)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every fault test must reproduce exactly."""
    root = tmp_path_factory.mktemp("straight")
    code, _, err = _finish(["train", *FAULT_ARGS, "--out", "run"], root)
    assert code == 0, err
    return root / "run"


def _assert_same_run(a: Path, b: Path) -> None:
    """Same final weights bit for bit, and the same metrics (wall-clock seconds aside)."""
    wa, wb = (
        load_model(a / "model.safetensors").state_dict(),
        load_model(b / "model.safetensors").state_dict(),
    )
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key

    def metrics(run: Path) -> list[dict]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [
            {k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows
        ]  # wall clock

    assert metrics(a) == metrics(b)
    ra, rb = (json.loads((r / "result.json").read_text()) for r in (a, b))
    assert (ra["test_acc"], ra["test_loss"]) == (rb["test_acc"], rb["test_loss"])


# SIGKILL the child inside the fsync of its second last.safetensors write: the temp file is written but
# not yet renamed over the first one, the moment a checkpoint write is most exposed.
_KILL_IN_WRITE = """
import os, signal
_real_fsync, _seen = os.fsync, []
def _fsync(fd):
    if ".last.safetensors." in os.readlink(f"/proc/self/fd/{fd}"):
        _seen.append(fd)
        if len(_seen) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    _real_fsync(fd)
os.fsync = _fsync
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to find the file being synced")
def test_sigkill_during_a_checkpoint_write_keeps_the_old_one_and_resume_is_exact(
    tmp_path: Path, straight: Path
) -> None:
    code, _, _ = _finish(["train", *FAULT_ARGS, "--out", "run"], tmp_path, _KILL_IN_WRITE)
    assert code == -signal.SIGKILL
    run = tmp_path / "run"
    assert read_metadata(run / "last.safetensors")["epoch"] == 1  # the first checkpoint, intact
    assert list(run.glob(".last.safetensors.*.tmp")), "the killed write should have left its temp file"
    code, out, err = _finish(["train", *FAULT_ARGS, "--out", "run", "--resume", "--json"], tmp_path)
    assert code == 0, err
    assert json.loads(out)["resumed"] is True and not list(run.glob("*.tmp"))
    _assert_same_run(straight, run)


# The child appends one byte to steps.log after every optimizer step, so the test can kill it a random number
# of steps into its run however fast the machine is (kills timed by wall clock alone raced a fast machine:
# the whole run could finish before the first kill landed, as it did once in CI).
_COUNT_STEPS = """
from torch.optim.optimizer import register_optimizer_step_post_hook
def _count(*_):
    with open("steps.log", "ab") as f:
        f.write(b".")
register_optimizer_step_post_hook(_count)
"""


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(
    tmp_path: Path, straight: Path
) -> None:
    rng = __import__("random").Random(0)
    steps_log = tmp_path / "steps.log"
    kills = 0
    for _ in range(12):
        before = steps_log.stat().st_size if steps_log.exists() else 0
        proc = _spawn(["train", *FAULT_ARGS, "--out", "run", "--resume", "--json"], tmp_path, _COUNT_STEPS)
        # 1-24 optimizer steps into this process (an epoch is 12 steps, the run 48; a resume restarts the
        # epoch it was killed in), then a random few ms more: the kill lands mid-step, between steps or
        # inside an end-of-epoch checkpoint write.
        target, deadline = before + rng.randint(1, 24), time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if steps_log.exists() and steps_log.stat().st_size >= target:
                break
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.03))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.communicate(timeout=60)
        kills += 1
    code, out, err = _finish(["train", *FAULT_ARGS, "--out", "run", "--resume", "--json"], tmp_path)
    assert code == 0, err
    assert kills >= 1
    _assert_same_run(straight, tmp_path / "run")


# Every optimizer step also sleeps 50 ms (numbers unchanged): epochs of this tiny run take 0.1 s on a fast
# machine, too short to signal the child reliably mid-run.
_SLOW_STEPS = """
import time
from torch.optim.optimizer import register_optimizer_step_post_hook
register_optimizer_step_post_hook(lambda *_: time.sleep(0.05))
"""


@pytest.mark.slow
def test_sigterm_saves_exits_143_and_resume_is_exact(tmp_path: Path, straight: Path) -> None:
    proc = _spawn(["train", *FAULT_ARGS, "--out", "run"], tmp_path, _SLOW_STEPS)
    deadline = time.time() + 120
    while not (tmp_path / "run" / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # into the second epoch
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "--resume" in err
    code, _, err = _finish(["train", *FAULT_ARGS, "--out", "run", "--resume"], tmp_path)
    assert code == 0, err
    _assert_same_run(straight, tmp_path / "run")


@pytest.mark.slow  # fast sibling: the diverging-lr test
def test_non_finite_loss_stops_keeps_the_last_good_checkpoint_and_exits_non_zero(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spatialmix_cli.training.tasks import Classify

    real, calls = Classify.loss, []

    def poisoned(self, output, targets, label_smoothing=0.0):
        calls.append(1)
        loss = real(self, output, targets, label_smoothing)
        return loss * float("nan") if len(calls) > 6 else loss  # 4 steps per epoch: NaN in epoch 2

    monkeypatch.setattr(Classify, "loss", poisoned)
    result = cli(
        "train", *_TINY, "--set", "subset=256", "--batch-size", "64", "--epochs", "3", "--out", "run"
    )
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training loss became nan at epoch 2") and "last.safetensors" in line
    last = tmp_path / "run" / "last.safetensors"
    assert read_metadata(last)["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in load_model(last).state_dict().values())
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # ~6 s; fast: full disk before config.yaml
def test_disk_full_on_checkpoint_write_is_a_clear_error_and_the_old_checkpoint_survives(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, seen = os.fsync, []

    def full_disk(fd: int) -> None:
        if ".last.safetensors." in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(fd)
            if len(seen) >= 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    args = [*_TINY, "--set", "subset=256", "--batch-size", "64", "--epochs", "3", "--out", "run"]
    monkeypatch.setattr(os, "fsync", full_disk)
    result = cli("train", *args)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "No space left on device" in line and "previous file is intact" in line, line
    assert "Traceback" not in result.stderr
    run = tmp_path / "run"
    assert read_metadata(run / "last.safetensors")["epoch"] == 1
    assert not list(run.glob("*.tmp")), "the failed write must not leave its temp file"
    resumed = cli("train", *args, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] is True
    fresh = cli("train", *args[:-1], "fresh")
    assert fresh.exit_code == 0
    _assert_same_run(tmp_path / "fresh", run)


# --------------------------------------------------------------------------------------------------------
# Security: nothing we load can run code; recipes cannot write outside their folder; fuzzed input fails
# cleanly.

PACKAGE = Path(__file__).resolve().parents[2] / "spatialmix_cli"


_PICKLERS = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}


def _unsafe_calls(source: str) -> list[str]:
    """Calls that can execute code from a file: torch.load without weights_only=True, yaml.load and its
    unsafe cousins, pickle / marshal loads, eval / exec."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: import {m}" for m in modules if m in _PICKLERS]
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                found += [
                    f"line {node.lineno}: from torch import load" for a in node.names if a.name == "load"
                ]
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name.endswith("torch.load"):
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            if not safe:
                found.append(f"line {node.lineno}: {name} without weights_only=True")
        elif name in {"yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "pickle.load",
                      "pickle.loads", "marshal.loads", "eval", "exec", "dill.load"}:  # fmt: skip
            found.append(f"line {node.lineno}: {name}")
    return found


def test_scanner_finds_unsafe_loads() -> None:
    bad = "import torch, yaml, pickle\ntorch.load('x')\ntorch.load('x', weights_only=False)\nyaml.load(s)\npickle.loads(b)\n"
    assert len(_unsafe_calls(bad)) == 5  # the import of pickle, and four calls
    assert _unsafe_calls("torch.load('x', weights_only=True)\nyaml.safe_load(s)\n") == []


def test_package_never_unpickles_or_loads_unsafe_yaml() -> None:
    problems = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := _unsafe_calls(path.read_text()))
    }
    assert problems == {}
    yaml_users = [p.name for p in PACKAGE.rglob("*.py") if "safe_load(" in p.read_text()]
    assert yaml_users == ["safeyaml.py"], "read YAML through spatialmix_cli.config.safeyaml.parse_yaml only"


def test_loading_a_checkpoint_never_touches_pickle(good_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle / torch.load was called while loading a checkpoint")

    for target, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(target, name, refuse)
    from spatialmix_cli.store.checkpoint import load_checkpoint

    ckpt = load_checkpoint(good_run / "last.safetensors")
    assert ckpt.learn == "chans"


def test_recipe_run_dirs_stay_inside_the_output_folder(tmp_path: Path) -> None:
    from spatialmix_cli.config.recipes import parse_recipe
    from spatialmix_cli.errors import ConfigError

    base = {"dataset": "synthetic", "width": 8, "depth": 1, "kernel": 3, "patch": 4}
    recipe = parse_recipe({"base": base, "sweep": [{"grid": "g", "seed": [0, 1]}]}, "r")
    for point in recipe.points(out=tmp_path):
        assert point.run_dir.resolve().is_relative_to(tmp_path.resolve())
    for bad in ({"out": "../x"}, {"out": "/etc"}, {"out": "a/../../b"}, {"name": "a/b"},
                {"sweep": [{"grid": "..", "seed": [0]}]}, {"sweep": [{"grid": "a/b", "seed": [0]}]}):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_recipe({"base": base, **bad}, "r")
