"""``spatialmix report``: figures, tables and the claims verdicts from the user's own run directories."""

from .build import build_report
from .collect import load_runs
from .stats import FAILS, HOLDS, UNKNOWN

__all__ = ["FAILS", "HOLDS", "UNKNOWN", "build_report", "load_runs"]
