"""``spatialmix report``: walk run directories, write report.md / report.html / runs.csv / settings.csv /
summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config.limits import MAX_DRAWS, check_at_most
from ..errors import ConfigError
from ..safefiles import check_output_folder, check_target
from ..training.stopping import Interrupted, signals_raise
from . import options as opt
from .output import console, emit_json, print_error, print_result, table

_DRAWS_HELP = (
    "Fresh random banks per N for the coverage claim; also the most frozen banks per kernel size "
    "it takes from your chans runs."
)

EXAMPLES = opt.examples(
    "spatialmix report runs/demo --out report",
    "spatialmix report runs/fig2 runs/fig3 --out report --format html --screenshot report.png",
)  # the --help epilog

Fig9Run = Annotated[
    Path | None,
    typer.Option(
        "--fig9-run",
        help="Run directory (one of RUNS, a ConvMixer learning full or chans, with weights) whose "
        "filters Fig. 9 draws, beside its full/chans twin of the same setting and seed. Default: of the "
        "chans random-bank runs with a full twin, the one with the highest test accuracy.",
        show_default=False,
    ),
]


@opt.with_panels()
def report_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories, or folders that contain them (searched recursively).", metavar="RUNS"
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for report.md / report.html / figures / CSVs.")
    ] = Path("report"),
    format_: Annotated[str, typer.Option("--format", help="md | html | both.")] = "both",
    draws: Annotated[int, typer.Option(help=_DRAWS_HELP)] = 8,
    screenshot: Annotated[
        Path | None,
        typer.Option(
            help="Also render report.html in headless Chromium, save a PNG screenshot here, and fail if any "
            "image did not load."
        ),
    ] = None,
    fig9_run: Fig9Run = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Figures (training curves included), tables (mean ± std over seeds), the numbers as runs.csv /
    settings.csv, and a verdict on each of the paper's claims."""
    from ..analysis.reporting import build_report

    if draws < 1:
        raise ConfigError(f"--draws must be >= 1, got {draws}")
    check_at_most("--draws", draws, MAX_DRAWS)
    check_output_folder(out, f"--out {out}")  # before minutes of figures, not after
    if screenshot is not None:
        check_target(screenshot)
    err = console()
    try:
        with signals_raise():  # SIGTERM too: the staged files are removed, the previous report stays
            report = build_report(list(run_dirs), out, fmt=format_, draws=draws, fig9_run=fig9_run)
    except Interrupted as exc:
        err.print(_interrupted(exc, out), markup=False)
        raise typer.Exit(exc.exit_code) from None
    rows = [[c.id, c.text, c.verdict + (" (masking flags)" if c.flagged else "")] for c in report.claims]
    print_result(table(f"claims from {len(report.runs)} runs", ["#", "claim", "verdict"], rows), json_)
    for path in report.files:
        err.print(f"wrote {path}")
    if screenshot is not None:
        _screenshot(report.files, screenshot)
    if json_:
        emit_json(report.summary())


def _screenshot(files: list[Path], screenshot: Path) -> None:
    """``--screenshot``: report.html rendered in headless Chromium, the whole page saved as a PNG (up to
    browser.MAX_HEIGHT px, said where cut); exit 1 if an image did not load."""
    from ..analysis.reporting.browser import screenshot_report

    html_path, seen = screenshot_report(files, screenshot)
    console().print(
        f"Chromium: {seen.images} images loaded, {seen.broken} broken; wrote {seen.screenshot} "
        f"({seen.shot_height} px tall"
        + (f", cut: the page is {seen.page_height} px)" if seen.cut else ", the whole page)")
    )
    if seen.broken:
        print_error(f"{seen.broken} image(s) in {html_path} did not load in Chromium")
        raise typer.Exit(1)


def _interrupted(exc: Interrupted, out: Path) -> str:
    """The one line an interrupted report prints (stderr)."""
    if exc.finished:
        return f"interrupted ({exc}) after the new report was in place in {out}; it is whole"
    return f"interrupted ({exc}): the report in {out} is as it was; the same command again builds it"
