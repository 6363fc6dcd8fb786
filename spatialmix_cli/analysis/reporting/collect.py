"""Find finished runs under the folders given to ``spatialmix report`` and read what each one holds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...attacks.spec import attack_name
from ...config.runfiles import ATTACKS_FILE, CONFIG_FILE, GRID_FILE, RESULT_FILE, UNSHUFFLE_FILE
from ...config.train import RUNTIME_KEYS, TrainConfig
from ...errors import ConfigError, RunDirError
from ...safefiles import read_jsonl, read_text
from ...store.rundir import has_weights, read_config, read_result
from .records import attack_problem, result_problem, unshuffle_problem


@dataclass
class Run:
    """One finished run directory: its config, final result, and any attack / un-shuffle results."""

    path: Path
    config: TrainConfig
    result: dict[str, Any]
    attacks: list[dict[str, Any]] = field(default_factory=list)
    unshuffle: dict[str, Any] | None = None
    grid: Path | None = None

    def key(self, drop: tuple[str, ...] = ()) -> tuple[tuple[str, Any], ...]:
        """The config as a hashable identity, without the runtime keys (``config.RUNTIME_KEYS``: they do not
        change what a run computes) and without ``drop``."""
        values = self.config.to_dict()
        return tuple(sorted((k, v) for k, v in values.items() if k not in RUNTIME_KEYS and k not in drop))

    def get(self, name: str) -> Any:
        return getattr(self.config, name)

    @property
    def metric(self) -> float | None:
        """Test accuracy (fraction) for classifiers, test PSNR (dB) for un-shuffling."""
        if self.config.task == "unshuffle":
            if self.unshuffle is not None:
                return float(self.unshuffle["psnr"])
            return self.result.get("test_psnr")
        return self.result.get("test_acc")


def find_run_dirs(roots: list[Path]) -> list[Path]:
    """Every folder at or under ``roots`` that holds a ``config.yaml`` (sorted, no duplicates)."""
    found: set[Path] = set()
    for root in roots:
        if not root.exists():
            raise ConfigError(f"{root} does not exist; give run directories or folders that contain them")
        if root.is_file():
            raise ConfigError(f"{root} is a file; give run directories or folders that contain them")
        found.update(p.parent.resolve() for p in root.rglob(CONFIG_FILE))
    return sorted(found)


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it, so a committed report names no
    machine-specific absolute paths."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _jsonl(path: Path, skipped: list[str]) -> list[dict[str, Any]]:
    """The whole JSON lines of ``path``; a line that is not one (cut short by a killed writer or a full
    disk) is skipped and named in ``skipped``, the rest are kept."""
    try:
        found = read_jsonl(path)
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        skipped.append(f"{shown(path)}: unreadable ({exc}); its results are left out")
        return []
    if found.bad:
        numbers = ", ".join(map(str, found.bad[:5])) + (", ..." if len(found.bad) > 5 else "")
        skipped.append(
            f"{shown(path)}: skipped {len(found.bad)} line(s) that are not whole JSON (line {numbers}; "
            "cut short by a killed or failed write?); the other lines are kept"
        )
    return found.rows


def _usable_attacks(path: Path, skipped: list[str]) -> list[dict[str, Any]]:
    """The lines of ``attacks.jsonl`` that are whole and whose fields make sense; the others are named."""
    rows, bad = [], []
    for number, row in enumerate(_jsonl(path, skipped), 1):
        problem = attack_problem(row)
        if problem is None:
            rows.append(row)
        else:
            bad.append(f"result {number}: {problem}")
    if bad:
        more = f", and {len(bad) - 3} more" if len(bad) > 3 else ""
        skipped.append(f"{shown(path)}: left out {len(bad)} damaged result(s) ({'; '.join(bad[:3])}{more})")
    return rows


def load_runs(roots: list[Path]) -> tuple[list[Run], list[str]]:
    """Finished runs under ``roots``, and a note for each folder that was skipped and why."""
    runs, skipped = [], []
    for path in find_run_dirs(roots):
        try:
            config = read_config(path)
        except RunDirError as exc:
            skipped.append(f"{shown(path)}: {exc}")
            continue
        if config is None:
            skipped.append(f"{shown(path)}: no readable config.yaml")
            continue
        if not (path / RESULT_FILE).is_file():
            skipped.append(f"{shown(path)}: unfinished (no result.json)")
            continue
        result = read_result(path, require_weights=False)  # a committed run record has no weights
        problem = "not JSON" if result is None else result_problem(result, config.task)
        if problem is not None:
            skipped.append(f"{shown(path)}: damaged {RESULT_FILE} ({problem}); the run is left out")
            continue
        unshuffle = None
        if (path / UNSHUFFLE_FILE).is_file():
            try:
                unshuffle = json.loads(read_text(path / UNSHUFFLE_FILE))
            except (OSError, ValueError, RecursionError):
                unshuffle = "not JSON"
            problem = unshuffle_problem(unshuffle) if not isinstance(unshuffle, str) else unshuffle
            if problem is not None:
                skipped.append(
                    f"{shown(path)}: damaged {UNSHUFFLE_FILE} ({problem}); PSNR taken from result.json"
                )
                unshuffle = None
        grid = path / GRID_FILE if (path / GRID_FILE).is_file() else None
        attacks = _latest_attacks(_usable_attacks(path / ATTACKS_FILE, skipped))
        runs.append(Run(path, config, result, attacks, unshuffle, grid))
    return _merge_duplicates(runs, skipped)


def _merge_duplicates(runs: list[Run], skipped: list[str]) -> tuple[list[Run], list[str]]:
    """Two recipes can train the very same run (same config and seed, e.g. a depth sweep and a width sweep
    crossing at one point). Count it once — it is one sample, not two — keeping the attack results of both,
    and the copy that kept its weights (a run record may not have them; figures need them)."""
    first: dict[tuple[tuple[str, Any], ...], Run] = {}
    for run in runs:
        twin = first.get(run.key())
        if twin is None:
            first[run.key()] = run
            continue
        keep, drop = (run, twin) if has_weights(run.path) and not has_weights(twin.path) else (twin, run)
        keep.attacks = _latest_attacks(twin.attacks + run.attacks)
        first[run.key()] = keep
        skipped.append(f"{shown(drop.path)}: same config and seed as {shown(keep.path)}; counted once")
    return list(first.values()), skipped


def _latest_attacks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """attacks.jsonl is appended to by every `spatialmix attack`; keep the newest line per (exact attack:
    method, steps, step size and start, ε, n, seed, source)."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (attack_name(row), *(row.get(k) for k in ("eps", "n", "seed", "source")))
        latest[key] = row
    return list(latest.values())
