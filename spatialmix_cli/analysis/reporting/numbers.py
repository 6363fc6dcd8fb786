"""The report's numbers as rows: one per run (``runs.csv``) and one per setting, mean ± std over seeds
(``settings.csv``); the same rows go into ``summary.json``."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...attacks.spec import attack_name, eps_label
from ...safefiles import atomic_write_text
from .collect import Run, shown
from .compare import Stat, describe

RUNS_CSV, SETTINGS_CSV = "runs.csv", "settings.csv"


def varying_keys(runs: list[Run]) -> list[str]:
    """The identity keys (config minus runtime keys) whose value differs between ``runs``, seed excluded
    (it has its own column), in config order."""
    values: dict[str, set[str]] = {}
    for run in runs:
        for key, value in run.key(("seed",)):
            values.setdefault(key, set()).add(repr(value))
    order = list(runs[0].config.to_dict()) if runs else []
    return [k for k in order if len(values.get(k, ())) > 1]


def metric_name(run: Run) -> str:
    return "test_psnr" if run.config.task == "unshuffle" else "test_acc"


def _train_metric(run: Run) -> float | None:
    value = run.result.get("train_psnr" if run.config.task == "unshuffle" else "train_acc")
    return float(value) if isinstance(value, int | float) else None


def robust_columns(run: Run) -> dict[str, float]:
    """``robust_acc <attack> eps=<ε>`` per white-box attack result of the run (the newest of each)."""
    return {
        f"robust_acc {attack_name(a)} eps={eps_label(a)}": float(a["robust_acc"])
        for a in run.attacks
        if a.get("source") is None
    }


def run_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per run: run dir, the config keys that vary, seed, test and train metric, epochs, seconds,
    and robust accuracies (fractions; PSNR in dB)."""
    keys = varying_keys(runs)
    rows = []
    for run in sorted(runs, key=lambda r: str(r.path)):
        row: dict[str, Any] = {"run_dir": shown(run.path), **{k: run.get(k) for k in keys}}
        row |= {
            "seed": run.config.seed,
            "metric": metric_name(run),
            "test_metric": run.metric,
            "train_metric": _train_metric(run),
            "epochs_trained": run.result.get("epochs"),
            "seconds": run.result.get("seconds"),
        }
        rows.append(row | robust_columns(run))
    return rows


@dataclass(frozen=True)
class Setting:
    """The runs of one setting (every identity key but the seed) and their test metric over seeds."""

    runs: list[Run]
    stat: Stat

    @property
    def first(self) -> Run:
        return self.runs[0]


def settings(runs: list[Run]) -> list[Setting]:
    """Runs grouped by setting (all identity keys but the seed), each with its Stat."""
    found: dict[Any, list[Run]] = {}
    for run in runs:
        found.setdefault(run.key(("seed",)), []).append(run)
    return [Setting(rs, Stat.of(r.metric for r in rs if r.metric is not None)) for rs in found.values()]


def setting_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per setting: its folder and label, the keys that vary, mean, std and n of the test metric,
    its seeds and its run directories (the runs.csv rows behind it)."""
    keys = [k for k in varying_keys(runs) if k != "seed"]
    rows = []
    for s in settings(runs):
        first = s.first
        row: dict[str, Any] = {
            "folder": first.path.parent.name,
            "setting": describe(first, ()),
            **{k: first.get(k) for k in keys},
            "metric": metric_name(first),
        }
        mean = None if math.isnan(s.stat.mean) else s.stat.mean
        row |= {
            "mean": mean,
            "std": s.stat.std,
            "n": s.stat.n,
            "seeds": sorted(r.config.seed for r in s.runs),
            "run_dirs": sorted(shown(r.path) for r in s.runs),
        }
        rows.append(row)
    return sorted(rows, key=lambda r: (r["folder"], r["setting"]))


def to_csv(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV text: the union of their columns (first-seen order), empty cells for missing or None
    values, lists joined with spaces."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return value


def write_csvs(runs: list[Run], out: Path) -> tuple[list[Path], dict[str, list[dict[str, Any]]]]:
    """runs.csv and settings.csv in ``out``; returns their paths and the rows (for summary.json)."""
    rows = {"runs": run_rows(runs), "settings": setting_rows(runs)}
    paths = []
    for name, key in ((RUNS_CSV, "runs"), (SETTINGS_CSV, "settings")):
        atomic_write_text(out / name, to_csv(rows[key]))
        paths.append(out / name)
    return paths, rows


__all__ = [
    "RUNS_CSV",
    "SETTINGS_CSV",
    "Setting",
    "run_rows",
    "setting_rows",
    "settings",
    "to_csv",
    "varying_keys",
    "write_csvs",
]
