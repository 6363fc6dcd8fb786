"""Run directories: what is in one, its status (new / unfinished / finished / busy / other-config), and
refusing to mix configs.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one line per epoch),
``last.safetensors`` (weights + optimizer + progress, rewritten atomically every epoch and on Ctrl-C),
and, once finished, ``model.safetensors`` and ``result.json``. These are one process's file operations;
the trainer takes a run directory across ranks with ``training.claim.claimed_run_dir``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from ..config.runfiles import CONFIG_FILE, LAST_FILE, METRICS_FILE, MODEL_FILE, RESULT_FILE, RUN_FILES
from ..config.safeyaml import parse_yaml
from ..config.train import RUNTIME_KEYS, TrainConfig
from ..errors import ConfigError, RunDirError, SpatialmixError, write_error
from ..safefiles import (
    atomic_write_text,
    check_output_folder,
    make_folders,
    read_text,
    remove_made_folders,
    remove_stale_temp_files,
)
from .checkpoint import check_train_state
from .lock import claimed_by


def default_run_dir(cfg: TrainConfig, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    arch = cfg.arch.replace(":", "-")  # timm:convnext_atto → timm-convnext_atto
    return Path(root) / f"{arch}-{cfg.learn}-{cfg.filters}-{cfg.dataset}-s{cfg.seed}-{stamp}"


def read_config(run_dir: str | Path) -> TrainConfig | None:
    """The config a run directory was made with, or None if it has none."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = parse_yaml(read_text(path), str(path))
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from None
    try:
        return TrainConfig.from_dict(data or {}, str(path))
    except ConfigError as exc:
        raise RunDirError(f"{path} is not a config this version can use: {exc}") from None


def read_result(run_dir: str | Path, *, require_weights: bool = True) -> dict[str, Any] | None:
    """The finished run's result, or None. ``require_weights=False`` also accepts a run record whose
    weights were left out (a committed reproduction: config, result, metrics and attack lines only)."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file() or (require_weights and not (Path(run_dir) / MODEL_FILE).is_file()):
        return None
    try:
        result = json.loads(read_text(path))
    except (OSError, ValueError, RecursionError):
        return None
    return result if isinstance(result, dict) else None


def status(run_dir: str | Path) -> str:
    """``new`` (nothing to keep), ``unfinished`` (has last.safetensors) or ``finished`` (has its result;
    the trainer writes result.json after the weights, so a result means the run ran to its end — also in
    a run record kept without its weights, which is not trained again)."""
    run_dir = Path(run_dir)
    if read_result(run_dir, require_weights=False) is not None:
        return "finished"
    if (run_dir / LAST_FILE).is_file():
        return "unfinished"
    if os.path.lexists(run_dir / LAST_FILE):  # a FIFO, folder or dangling link: never trained over
        raise RunDirError(f"{run_dir / LAST_FILE} is not a regular file; remove it or pass --overwrite")
    return "new"


def has_weights(run_dir: str | Path) -> bool:
    """Whether a finished run kept its weights (a committed run record may not have)."""
    return (Path(run_dir) / MODEL_FILE).is_file()


def _describe(diff: dict[str, tuple[Any, Any]]) -> str:
    items = list(diff.items())
    text = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in items[:4])
    return text + (f", and {len(items) - 4} more" if len(items) > 4 else "")


STATUSES = ("new", "unfinished", "finished", "busy", "other-config")  # what run_status answers


def _saved_config(run_dir: Path) -> TrainConfig | None:
    """The config ``run_dir`` holds, or None for a folder not made yet or empty; a non-empty folder that is
    not a run directory is refused."""
    saved = read_config(run_dir) if run_dir.is_dir() else None
    # Dotfiles (the claim's .lock, temp files of a killed write) do not make a folder "used".
    if saved is None and run_dir.is_dir() and any(not p.name.startswith(".") for p in run_dir.iterdir()):
        raise RunDirError(
            f"--out {run_dir} exists and is not a spatialmix run directory; choose another folder"
        )
    return saved


def _decide(
    run_dir: Path, cfg: TrainConfig, *, overwrite: bool = False
) -> tuple[str, dict[str, tuple[Any, Any]]]:
    """The decision :func:`check_run_dir` and :func:`run_status` share, read-only: ``new``,
    ``other-config`` (with the differing keys), ``unfinished`` or ``finished``."""
    saved = _saved_config(run_dir)
    if saved is None or overwrite:
        return "new", {}
    diff = saved.diff(cfg, ignore=RUNTIME_KEYS)
    if diff:
        return "other-config", diff
    return status(run_dir), {}


def run_status(run_dir: str | Path, cfg: TrainConfig) -> str:
    """What training ``cfg`` into ``run_dir`` would find, read-only (nothing is written, not even the
    claim's lock file): ``busy`` (a live worker holds its claim), ``other-config`` (it holds a run of
    another config), ``finished``, ``unfinished`` (training resumes it with --resume) or ``new``. It is
    the decision :func:`check_run_dir` takes, in the order the trainer takes it."""
    run_dir = Path(run_dir)
    if claimed_by(run_dir) is not None:
        return "busy"
    return _decide(run_dir, cfg)[0]


def check_run_dir(
    run_dir: str | Path, cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False
) -> str:
    """Decide what training ``cfg`` into ``run_dir`` means, without touching the disk: returns ``new``,
    ``unfinished`` (resume it) or ``finished`` (nothing to do).

    Refuses: a non-empty folder that is not a run directory; a run directory of another config (unless
    ``overwrite``); an unfinished run unless ``resume`` or ``overwrite``.
    """
    run_dir = Path(run_dir)
    check_output_folder(run_dir, f"to --out {run_dir}")  # names too long, files in the way, no permission
    state, diff = _decide(run_dir, cfg, overwrite=overwrite)
    if state == "other-config":
        raise RunDirError(
            f"{run_dir} holds a run with another config ({_describe(diff)}); "
            "pass --overwrite to replace it or choose another --out"
        )
    if state == "unfinished" and not resume:
        raise RunDirError(
            f"{run_dir} holds an unfinished run; pass --resume to continue it or --overwrite to start over"
        )
    if state == "unfinished":
        # A damaged last.safetensors (progress fields of the wrong type, say) fails here, read-only, before
        # anything in the run directory is rewritten.
        done = check_train_state(run_dir / LAST_FILE).get("progress", {}).get("epoch", 0)
        if done > cfg.epochs:
            raise RunDirError(
                f"{run_dir / LAST_FILE} says {done} epochs are done of a {cfg.epochs}-epoch run (the file is "
                "damaged or was edited); pass --overwrite to start over"
            )
    return state


def init_run_dir(run_dir: str | Path, cfg: TrainConfig, state: str, *, overwrite: bool = False) -> None:
    """Write ``cfg`` into ``run_dir`` for a ``new`` or ``unfinished`` run (as decided by
    :func:`check_run_dir`). ``overwrite`` first removes only the run files listed in ``RUN_FILES``."""
    run_dir = Path(run_dir)
    created = make_folders(run_dir, what="--out")
    try:
        if overwrite and state == "new":
            for name in RUN_FILES:
                (run_dir / name).unlink(missing_ok=True)
        remove_stale_temp_files(run_dir)  # left by a run killed mid-write; the real files are intact
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    except (OSError, SpatialmixError) as exc:
        remove_made_folders(created)  # no half-made run folder is left behind
        if isinstance(exc, SpatialmixError):
            raise
        raise write_error(exc, f"to --out {run_dir}") from None


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in history))


def write_result(run_dir: Path, result: dict[str, Any]) -> None:
    atomic_write_text(run_dir / RESULT_FILE, json.dumps(result, indent=2) + "\n")
