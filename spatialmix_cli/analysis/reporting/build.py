"""``build_report``: runs → tables, figures, the claims verdicts, report.md / report.html / summary.json.
Everything is built in a hidden folder inside ``--out`` and moved into place in one held step at the end, so
a Ctrl-C or SIGTERM at any moment leaves the previous report whole (or, once the move began, the new one)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...attacks.spec import attack_name, eps_label
from ...config.limits import DEFAULT_LEVEL, DEFAULT_THRESHOLD
from ...errors import ConfigError
from ...safefiles import atomic_write_text, check_target, resolve_inside
from ...training.stopping import Interrupted, signals_held
from ..spectra.banks import disjoint_subset_coverage, drawn_spectrum, initial_banks
from . import curves, ladder, numbers, plots
from .claims import all_claims
from .collect import Run, load_runs
from .compare import Stat, describe
from .fig9 import Fig9Choice, fig9_runs
from .render import render_html, render_markdown
from .report import Report, Table

FORMATS = ("md", "html", "both")
COVERAGE_N = (1, 4, 16, 64)


def _settings_table(runs: list[Run]) -> Table:
    """The settings of settings.csv (numbers.settings: the same groups and Stats), formatted."""
    rows = []
    for s in numbers.settings(runs):
        first = s.first
        unshuffle = first.config.task == "unshuffle"
        cell = s.stat.fmt(1, 2, " dB") if unshuffle else s.stat.fmt(100, 2, "%")
        rows.append(
            [str(first.path.parent.name), describe(first, ()), first.config.learn, first.config.task, cell]
        )
    rows.sort()
    return Table(
        "Test metric per setting (mean ± std over seeds; n = runs)",
        ["folder", "setting", "learn", "task", "test accuracy / PSNR"],
        rows,
    )


def _attack_table(runs: list[Run]) -> Table | None:
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        for a in r.attacks:
            name = attack_name(a)
            label = describe(r, ("learn",)) + (f" ({r.config.adv}-trained)" if r.config.adv != "none" else "")
            cells.setdefault((label, r.config.learn, name, eps_label(a)), []).append(a)
    if not cells:
        return None
    rows = []
    for (label, learn, name, eps), rows_ in sorted(cells.items()):
        clean, robust = Stat.of(a["clean_acc"] for a in rows_), Stat.of(a["robust_acc"] for a in rows_)
        flags = sorted({f for a in rows_ for f in a.get("flags", [])})
        rows.append(
            [
                label,
                learn,
                name,
                eps,
                clean.fmt(100, 1, "%"),
                robust.fmt(100, 1, "%"),
                ", ".join(flags) or "ok",
            ]
        )
    return Table(
        "Robust accuracy (mean ± std over seeds; masking checks)",
        ["setting", "learn", "attack", "ε", "clean", "robust", "masking checks"],
        rows,
    )


def _unshuffle_table(runs: list[Run]) -> Table | None:
    rows = []
    for r in sorted((r for r in runs if r.unshuffle is not None), key=lambda r: str(r.path)):
        u = r.unshuffle or {}
        rows.append(
            [
                f"{r.path.parent.name}/{r.path.name}",
                describe(r, ("learn",)),
                r.config.learn,
                f"{u['psnr']:.2f}",
                f"{u['psnr_scrambled']:.2f}",
                f"{u['psnr_mean']:.2f}",
            ]
        )
    if not rows:
        return None
    return Table(
        "Un-shuffling: test PSNR (dB) next to its baselines",
        ["run", "setting", "learn", "PSNR", "scrambled input", "training mean"],
        rows,
    )


def own_bank_coverage(runs: list[Run], pad: int, limit: int = 8) -> dict[str, dict[int, list[float]]]:
    """Coverage per N from the frozen random banks of the chans runs: every such run in path order, its banks
    rebuilt from its config (``initial_banks``: the same with or without its weights on disk), each bank
    with at least 1 + 4 + 16 + 64 filters and not a copy of one already taken (runs that share a seed and
    sizes start from the same banks), at most ``limit`` per kernel size (the report passes ``--draws``: as
    many as fresh banks per N). Disjoint blocks of 1, 4, 16, 64 filters of each bank, so every N is an
    independent sample."""
    by_kernel: dict[int, dict[int, list[float]]] = {}
    used: dict[int, int] = {}
    seen: set[bytes] = set()
    chosen = [
        r
        for r in runs
        if r.config.learn == "chans"
        and r.config.filters == "random"
        and r.config.task == "classify"
        and not r.config.pretrained
    ]
    for run in sorted(chosen, key=lambda r: str(r.path)):
        for bank in initial_banks(run.config):
            k, fingerprint = int(bank.shape[-1]), bank.numpy().tobytes()
            if bank.shape[0] < sum(COVERAGE_N) or used.get(k, 0) >= limit or fingerprint in seen:
                continue
            used[k] = used.get(k, 0) + 1
            seen.add(fingerprint)
            for n, value in disjoint_subset_coverage(bank, COVERAGE_N, pad=pad).items():
                by_kernel.setdefault(k, {}).setdefault(n, []).append(value)
    return {
        f"frozen random banks of your chans runs (kernel {k}, {used[k]} banks)": d
        for k, d in sorted(by_kernel.items())
    }


def build_report(
    roots: list[Path],
    out: Path,
    *,
    fmt: str = "both",
    pad: int = 512,
    draws: int = 8,
    fig9_run: Path | None = None,
) -> Report:
    """Walk ``roots`` for finished runs and write the report into ``out``; Fig. 9 draws ``fig9_run``
    (a run directory among them) and its twin, else the runs :data:`fig9.RULE` takes."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    runs, skipped = load_runs(roots)
    if not runs:
        raise ConfigError(
            f"no finished runs under {', '.join(map(str, roots))} (a run directory holds config.yaml, "
            "result.json and model.safetensors); train some with `spatialmix train` first"
            + (f"; skipped {len(skipped)} folder(s), e.g. {skipped[0]}" if skipped else "")
        )
    choice = fig9_runs(runs, fig9_run)  # a bad --fig9-run fails here, before minutes of figures
    figures_dir = out / "figures"
    _check_out(out, figures_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".report-", suffix=".tmp", dir=out))
    try:
        report = _build(Report(stage, runs, skipped), pad, draws, choice)
        _write(report, fmt)
        _put_in_place(report, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()  # a first build that was stopped leaves no empty folder either
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return report


def _build(report: Report, pad: int, draws: int, choice: Fig9Choice) -> Report:
    """The claims, tables and figures (into ``report.out``/figures) of ``report.runs``."""
    runs = report.runs

    banks = [
        drawn_spectrum(kind, n, 5, draws=draws, pad=pad) for kind in ("random", "smooth") for n in COVERAGE_N
    ]
    fresh = {b.n: list(b.coverages) for b in banks if b.filters == "random"}
    report.claims = all_claims(runs, fresh, own_bank_coverage(runs, pad, limit=draws))

    report.tables.append(_settings_table(runs))
    for table in (_attack_table(runs), _unshuffle_table(runs)):
        if table is not None:
            report.tables.append(table)
    report.tables.append(
        Table(
            f"Spectral coverage of fresh banks (kernel 5, pad {pad}; coverage: share of frequencies where a "
            f"unit-energy filter reaches |H| ≥ {DEFAULT_LEVEL:g} × a flat spectrum's; peak-relative: ≥ "
            f"{DEFAULT_THRESHOLD:g} × the bank's own peak; mean ± std over {draws} draws)",
            ["filters", "N", "coverage", "peak-relative coverage", "high-frequency share"],
            [
                [
                    b.filters,
                    str(b.n),
                    Stat(b.coverage, b.coverage_std, b.draws).fmt(digits=3),
                    Stat(b.peak_relative_coverage, b.peak_relative_coverage_std, b.draws).fmt(digits=3),
                    Stat(b.high_freq_share, b.high_freq_share_std, b.draws).fmt(digits=3),
                ]
                for b in banks
            ],
        )
    )
    report.figures = _figures(runs, report.out / "figures", banks, pad, choice)
    return report


def _check_out(out: Path, figures_dir: Path) -> None:
    """figures/ as a link out of the report is refused, and so is every link among the files a report may
    rewrite: checked before the first is written, so nothing is."""
    resolve_inside(figures_dir, out)
    for folder in (out, figures_dir):
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.is_symlink():
                    check_target(entry, out)  # refuses the link, naming it


def _figures(
    runs: list[Run], figures_dir: Path, banks: list[Any], pad: int, choice: Fig9Choice
) -> list[tuple[str, Path]]:
    """Every figure the runs cover, as (caption, path); Fig. 9's captions say which runs it draws and why."""
    captions = (
        (
            "Training curves per setting (mean ± std band over seeds)",
            lambda: curves.training_curves(runs, figures_dir),
        ),
        (
            "Accuracy / PSNR vs depth per learn mode (Figs. 2, 5, 10, B.4, B.5)",
            lambda: plots.sweep(runs, "depth", figures_dir, "vs-depth"),
        ),
        (
            "Accuracy / PSNR vs width (Figs. 4, 10, B.4, B.5)",
            lambda: plots.sweep(runs, "width", figures_dir, "vs-width"),
        ),
        (
            "Accuracy / PSNR vs kernel (Figs. 10, B.4, B.5)",
            lambda: plots.sweep(runs, "kernel", figures_dir, "vs-kernel"),
        ),
        ("Frozen filter structure (Fig. 3)", lambda: plots.filter_bars(runs, figures_dir)),
        ("Adversarial accuracy per learn mode (Fig. 6)", lambda: plots.attack_bars(runs, figures_dir)),
        ("Robust accuracy vs ε (Fig. 7)", lambda: plots.robust_vs_eps(runs, figures_dir)),
        (
            "The learn-mode ladder: test accuracy vs trainable parameters (beyond the paper)",
            lambda: ladder.ladder_figure(runs, figures_dir),
        ),
        (
            "Spectral envelopes (Figs. 1, 8, 9)",
            lambda: plots.envelopes(runs, figures_dir, banks, pad, DEFAULT_LEVEL, choice),
        ),
        (
            "Un-shuffling reconstructions (Figs. 11, B.2, B.3)",
            lambda: plots.reconstruction_grids(runs, figures_dir),
        ),
    )
    figures: list[tuple[str, Path]] = []
    for caption, make in captions:
        made = [Path(p) for p in make()]
        for p in made:
            text = f"{caption} — {p.stem}" if len(made) > 1 else caption
            learn = p.stem.removeprefix("fig9-envelopes-")
            figures.append((f"{text}: {choice.caption(learn)}" if p.stem != learn else text, p))
    return figures


def _write(report: Report, fmt: str) -> None:
    """report.md / report.html (per ``fmt``), runs.csv / settings.csv and summary.json into ``report.out``
    (the staging folder); the paths summary.json names are those the files will have once in place."""
    stage = report.out
    if fmt in ("md", "both"):
        atomic_write_text(stage / "report.md", render_markdown(report))
        report.files.append(stage / "report.md")
    if fmt in ("html", "both"):
        atomic_write_text(stage / "report.html", render_html(report))
        report.files.append(stage / "report.html")
    csvs, report.numbers = numbers.write_csvs(report.runs, stage)
    report.files.extend(csvs)
    report.files.append(stage / "summary.json")


def _put_in_place(report: Report, out: Path) -> None:
    """Move the staged files into ``out`` with signals held (each move is a rename, so the whole step takes
    milliseconds): the new figures, then the pages and numbers; then figures/ loses the PNGs of an earlier
    build that this one did not write (unlinking a name never touches what a link there points to).
    ``report`` then names the files where they now are."""
    stage = report.out
    staged = [p for _, p in report.figures] + report.files
    report.out = out
    report.figures = [(caption, out / p.relative_to(stage)) for caption, p in report.figures]
    report.files = [out / p.relative_to(stage) for p in report.files]
    summary = json.dumps(report.summary(), indent=2, default=str) + "\n"
    atomic_write_text(stage / "summary.json", summary)
    figures_dir = out / "figures"
    written = {p.name for _, p in report.figures if p.parent == figures_dir}
    try:
        with signals_held():
            for path in staged:
                (out / path.relative_to(stage)).parent.mkdir(exist_ok=True)
                os.replace(path, out / path.relative_to(stage))
            for old in figures_dir.glob("*.png") if figures_dir.is_dir() else []:
                if old.name not in written:
                    old.unlink()
    except Interrupted as exc:  # held until the new report was in place
        exc.finished = True
        raise


__all__ = ["FORMATS", "Report", "Table", "build_report"]
