"""``spatialmix report``: walk run directories, write report.md / report.html / summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..reporting import build_report
from . import options as opt
from .output import console, emit_json, handled_errors, table


def report_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Run directories, or folders that contain them (searched recursively)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.md / report.html / figures.")] = Path(
        "report"
    ),
    format_: Annotated[str, typer.Option("--format", help="md | html | both.")] = "both",
    draws: Annotated[int, typer.Option(help="Fresh random banks per N for the coverage claim.")] = 8,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Figures, tables (mean ± std over seeds) and a verdict on each of the paper's claims."""
    with handled_errors(debug):
        report = build_report(list(run_dirs), out, fmt=format_, draws=draws)
        err = console()
        rows = [[c.id, c.text, c.verdict + (" (masking flags)" if c.flagged else "")] for c in report.claims]
        err.print(table(f"claims from {len(report.runs)} runs", ["#", "claim", "verdict"], rows))
        for path in report.files:
            err.print(f"wrote {path}")
        if json_:
            emit_json(report.summary())
