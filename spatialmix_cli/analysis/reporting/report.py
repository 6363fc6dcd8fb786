"""What a report holds: its tables, figures and claims verdicts, and the summary.json it writes."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .claims import CI_RULE, Claim
from .collect import Run


@dataclass
class Table:
    """One table of report.md / report.html: a title, its column names and its cells, formatted."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    """A report being built into ``out``: the runs it read, the folders it skipped, and what it shows."""

    out: Path
    runs: list[Run]
    skipped: list[str]
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, path)
    claims: list[Claim] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    numbers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # runs.csv / settings.csv rows

    def summary(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "runs": len(self.runs),
            "skipped": self.skipped,
            "verdict_rule": CI_RULE,
            "claims": [c.to_dict() for c in self.claims],
            "numbers": self.numbers,  # the rows of runs.csv and settings.csv
            "figures": [str(p.relative_to(self.out)) for _, p in self.figures],
            "files": [str(p) for p in self.files],
            "machine": machine(),
        }


def machine() -> dict[str, Any]:
    """Where the report was built: date, platform, CPUs, torch, the GPU if any, the checkout's commit."""
    git = ["git", "rev-parse", "--short", "HEAD"]
    try:
        commit = subprocess.run(git, capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "commit": commit or None,
    }
