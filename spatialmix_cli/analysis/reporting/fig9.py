"""Which two checkpoints Fig. 9 draws (one learned, one frozen-random ConvMixer), chosen by a stated rule
or by the user (``spatialmix report --fig9-run``), each with a few words on why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...config.runfiles import MODEL_FILE
from ...errors import ConfigError
from ...store.rundir import has_weights
from .collect import Run, shown

RULE = (
    "a chans ConvMixer run with frozen random banks beside the full run of its setting and seed: of the "
    "chans runs with such a twin, the one with the highest test accuracy (ties: the first by path); where "
    "none has one, the best chans run and the best full run"
)


@dataclass(frozen=True)
class Fig9Choice:
    """The full and chans runs Fig. 9 draws (None: not among the runs), each with a few words on why it
    was taken (its figure's title and caption say them)."""

    full: Run | None
    chans: Run | None
    notes: dict[str, str] = field(default_factory=dict)  # learn mode -> why (the report's caption)

    def title(self, learn: str) -> str:
        """Why, in the few words a figure's title holds: the note up to its first comma."""
        return self.notes[learn].split(", ")[0]

    def caption(self, learn: str) -> str:
        """``runs/x/seed-0 (why)`` for the ``learn`` figure; empty where it draws none."""
        run = self.full if learn == "full" else self.chans
        return f"{shown(run.path)} ({self.notes[learn]})" if run is not None else ""


def _best(runs: list[Run]) -> Run | None:
    """The run with the highest test accuracy; ties (and runs without one) by path."""
    ranked = sorted(runs, key=lambda r: (-(r.metric if r.metric is not None else -1.0), str(r.path)))
    return ranked[0] if ranked else None


def _convmixer(run: Run) -> bool:
    return run.config.task == "classify" and run.config.arch.startswith("convmixer") and has_weights(run.path)


def _twin(run: Run, runs: list[Run], learn: str) -> Run | None:
    """The ``learn`` run of ``run``'s setting and seed (the bank too where several match)."""
    same = [r for r in runs if r.config.learn == learn and r.key(("learn",)) == run.key(("learn",))]
    same = same or [
        r
        for r in runs
        if r.config.learn == learn and r.key(("learn", "filters")) == run.key(("learn", "filters"))
    ]
    return _best(same)


def _picked(runs: list[Run], chosen: Path) -> Run:
    """The run directory ``--fig9-run`` names, checked: one of the reported runs, a ConvMixer classifier
    that learns full or chans, with its weights."""
    target = Path(chosen).resolve()
    run = next((r for r in runs if r.path == target), None)
    if run is None:
        raise ConfigError(f"--fig9-run {chosen} is not one of the reported run directories")
    if not has_weights(run.path):
        raise ConfigError(f"--fig9-run {chosen} has no weights ({MODEL_FILE}); Fig. 9 reads its filters")
    if not _convmixer(run) or run.config.learn not in ("full", "chans"):
        raise ConfigError(
            f"--fig9-run {chosen} is a {run.config.arch} {run.config.task} run learning "
            f"{run.config.learn}; Fig. 9 draws a ConvMixer classifier learning full or chans"
        )
    return run


def fig9_runs(runs: list[Run], chosen: Path | None = None) -> Fig9Choice:
    """The runs Fig. 9 draws: ``chosen`` (a run directory among ``runs``; its full or chans twin of the
    same setting and seed beside it), else by :data:`RULE`. Raises ConfigError for a ``chosen`` that is
    not one of ``runs``, has no weights or is not a ConvMixer classifier learning full or chans."""
    candidates = [r for r in runs if _convmixer(r)]
    if chosen is not None:
        run = _picked(runs, chosen)
        other = "full" if run.config.learn == "chans" else "chans"
        pair = {run.config.learn: run, other: _twin(run, candidates, other)}
        notes = {
            run.config.learn: "chosen with --fig9-run"
            + ("" if pair[other] else f", no {other} run of its setting and seed with weights"),
            other: f"the {other} run of its setting and seed",
        }
        return Fig9Choice(pair["full"], pair["chans"], notes)
    pool = [r for r in candidates if r.config.learn == "chans" and r.config.filters == "random"]
    full_pool = [r for r in candidates if r.config.learn == "full"]
    paired = [r for r in pool if _twin(r, full_pool, "full") is not None]
    chans = _best(paired or pool)
    twin = _twin(chans, full_pool, "full") if chans else None
    acc = f"{chans.metric * 100:.1f}%" if chans is not None and chans.metric is not None else "none"
    among = (
        f"{len(paired)} of the {len(pool)} chans random-bank runs with weights {'has' if len(paired) == 1 else 'have'} one"
        if paired
        else f"none of the {len(pool)} chans random-bank runs with weights has a full twin"
    )
    notes = {
        "chans": f"best test accuracy among chans runs{' with a full twin' if paired else ''}, {acc}; {among}",
        "full": "the full run of its setting and seed"
        if twin
        else "the full run with the highest test accuracy",
    }
    return Fig9Choice(twin or _best(full_pool), chans, notes)


__all__ = ["RULE", "Fig9Choice", "fig9_runs"]
