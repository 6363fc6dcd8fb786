"""``spatialmix report``: figures, tables and the claims verdicts from the user's own run directories."""

from .build import FORMATS, Report, Table, build_report
from .claims import FAILS, HOLDS, UNKNOWN, Claim, all_claims
from .collect import Run, load_runs

__all__ = ["FAILS", "FORMATS", "HOLDS", "UNKNOWN", "Claim", "Report", "Run", "Table", "all_claims",
           "build_report", "load_runs"]  # fmt: skip
