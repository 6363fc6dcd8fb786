"""What a report may read from a run's files: each record checked field by field before it is used.

``result.json``, ``attacks.jsonl`` and ``unshuffle.json`` are plain text that anyone can edit or damage.
A record with a field of the wrong type or out of range would otherwise fail deep inside the statistics
(or, worse, give a number), so each problem function returns ``None`` for a usable record or one phrase
saying what is wrong; the collector leaves that record out and names it in the report's skipped list.
Only the fields the report reads are checked; older records without the newer optional fields pass.
"""

from __future__ import annotations

from typing import Any

from ...config.numbers import is_finite_number

_number = is_finite_number


def _fraction(value: Any) -> bool:
    return _number(value) and 0 <= value <= 1


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _string(value: Any) -> bool:
    return isinstance(value, str)


_RESULT_FIELDS = {
    "test_loss": _number,
    "train_loss": _number,
    "train_acc": _optional(_fraction),
    "epochs": _count,
    "seconds": _number,
    "params_trainable": _count,
    "params_frozen": _count,
    "test_psnr": _optional(_number),
    "train_psnr": _optional(_number),
}

_ATTACK_FIELDS = {
    "eps": _fraction,
    "clean_acc": _fraction,
    "robust_acc": _fraction,
    "n": _optional(lambda v: _count(v) and v > 0),
    "seed": _optional(_count),
    "steps": _optional(lambda v: _count(v) and v > 0),
    "alpha": _optional(lambda v: _number(v) and v > 0),
    "random_start": _optional(lambda v: isinstance(v, bool)),
    "attack": _optional(_string),
    "source": _optional(_string),
    "transfer_acc": _optional(_fraction),
    "robust_correct": _optional(_string),
    "flags": _optional(lambda v: isinstance(v, list) and all(_string(x) for x in v)),
}

_UNSHUFFLE_FIELDS = {"psnr": _number, "psnr_scrambled": _number, "psnr_mean": _number}


def _fields_problem(record: Any, checks: dict[str, Any], required: tuple[str, ...]) -> str | None:
    if not isinstance(record, dict):
        return f"not a JSON object ({type(record).__name__})"
    missing = [key for key in required if key not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    for key, ok in checks.items():
        if key in record and not ok(record[key]):
            return f"'{key}' is {record[key]!r}"
    return None


def result_problem(result: Any, task: str) -> str | None:
    """Why a ``result.json`` cannot be used for a run of ``task``, or None."""
    metric = "test_psnr" if task == "unshuffle" else "test_acc"
    problem = _fields_problem(result, _RESULT_FIELDS, (metric,))
    if problem is None and not (
        _number(result[metric]) if task == "unshuffle" else _fraction(result[metric])
    ):
        problem = f"'{metric}' is {result[metric]!r}"
    return problem


def attack_problem(row: Any) -> str | None:
    """Why an ``attacks.jsonl`` line cannot be used, or None."""
    problem = _fields_problem(row, _ATTACK_FIELDS, ("method", "eps", "clean_acc", "robust_acc"))
    if problem is None and not _string(row["method"]):
        problem = f"'method' is {row['method']!r}"
    if problem is None and row["method"] == "pgd" and "attack" not in row and "steps" not in row:
        problem = "a PGD line without its steps"
    return problem


def unshuffle_problem(record: Any) -> str | None:
    """Why an ``unshuffle.json`` cannot be used, or None."""
    return _fields_problem(record, _UNSHUFFLE_FIELDS, tuple(_UNSHUFFLE_FIELDS))
