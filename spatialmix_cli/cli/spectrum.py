"""``spatialmix spectrum``: spectral envelopes and coverage of depthwise filter banks (Fig. 1, 8, 9)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config.banks import DRAWN_BANKS, parse_bank
from ..config.keys import MODEL
from ..config.limits import (
    DEFAULT_LEVEL,
    DEFAULT_PAD,
    DEFAULT_THRESHOLD,
    MAX_DRAWS,
    MAX_MULTIPLIER,
    check_at_most,
)
from ..errors import ConfigError
from . import options as opt
from .output import emit_json, print_result, table

if TYPE_CHECKING:
    from ..analysis.spectra import CheckpointSpectra, DrawnSpectrum

# The library (torch and all) is imported inside the functions that use it: --help needs none of it.

SPECTRUM = "Spectrum"  # the --help panel of the FFT size and the coverage level / threshold
_FILTERS_HELP = f"{' | '.join(DRAWN_BANKS)}, a bank spec such as smooth:1.5 (σ), or a list: random,smooth."
_LEVEL_HELP = (
    "Coverage counts frequencies where some filter, scaled to unit energy, has |H| ≥ LEVEL × a flat "
    "spectrum's (|H| = 1); adding a filter never lowers it."
)
_THRESHOLD_HELP = "peak_relative_coverage counts frequencies ≥ THRESHOLD × the bank's peak."


EXAMPLES = opt.examples(
    "spatialmix spectrum --random 1,4,16,64 --kernel 9 --filters random,smooth --out spectra.png",
    "spatialmix spectrum --random 64 --kernel 9 --draws 8 --json",
    "spatialmix spectrum runs/c256 --layer 0,3",
)  # the --help epilog


@opt.with_panels(layer=MODEL, random=MODEL, draws=MODEL, pad=SPECTRUM, level=SPECTRUM, threshold=SPECTRUM)
def spectrum_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            help="Checkpoint (.safetensors) or run directory.", show_default=False, metavar="TARGET"
        ),
    ] = None,
    layer: Annotated[
        str | None,
        typer.Option(help="Depthwise layer (0-based), a list 0,3, or 'all'.", show_default="all"),
    ] = None,
    random: Annotated[
        str | None,
        typer.Option("--random", help="Fresh banks of N filters instead of a checkpoint; a list: 1,4,16,64."),
    ] = None,
    kernel: Annotated[int | None, typer.Option(help="Kernel size of fresh banks (with --random).")] = None,
    filters: Annotated[str | None, typer.Option(help=_FILTERS_HELP, show_default="random")] = None,
    multiplier: Annotated[
        int | None,
        typer.Option(help="Depth multiplier d: ceil(N/d) channels of d filters.", show_default="1"),
    ] = None,
    seed: opt.Seed = None,
    draws: Annotated[
        int | None, typer.Option(help="Average over seeds seed..seed+D-1.", show_default="1")
    ] = None,
    pad: Annotated[int, typer.Option(help="FFT size P (filters zero-padded to P×P).")] = DEFAULT_PAD,
    level: Annotated[float, typer.Option(help=_LEVEL_HELP)] = DEFAULT_LEVEL,
    threshold: Annotated[float, typer.Option(help=_THRESHOLD_HELP)] = DEFAULT_THRESHOLD,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the figure to this PNG.")] = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Spectral envelopes (max |FFT| over a bank's filters, each scaled to unit energy) and their coverage,
    from a checkpoint's depthwise layers or from fresh random / same / box / identity / smooth banks.

    coverage: the share of frequencies where some unit-energy filter reaches |H| ≥ --level, in units of a
    flat spectrum of the same energy (|H| = 1): adding a filter never lowers it. peak_relative_coverage:
    the share at ≥ --threshold × the bank's own peak."""
    fresh = {
        "--kernel": kernel,
        "--filters": filters,
        "--multiplier": multiplier,
        "--seed": seed,
        "--draws": draws,
    }
    if (checkpoint is None) == (random is None):
        raise ConfigError("give a checkpoint (or run directory) or --random N, exactly one of them")
    cut = _cut(pad, level, threshold)
    if checkpoint is not None:
        _only_with("--random", [k for k, v in fresh.items() if v is not None])
        payload, figure = _checkpoint(checkpoint, _layers(layer), out, cut, json_)
    else:
        _only_with("a checkpoint", ["--layer"] if layer is not None else [])
        spectra = _drawn(random or "", kernel, filters, multiplier, seed, draws, cut)
        figure = _plot_drawn(spectra, out, cut)
        _print_drawn(spectra, cut, json_)
        payload = {"banks": [s.to_dict() for s in spectra]}
    if json_:
        emit_json({**payload, "pad": pad, "level": level, "threshold": threshold, "figure": figure})


@dataclass(frozen=True)
class Cut:
    """The FFT size and the two coverage cuts of one command."""

    pad: int
    level: float
    threshold: float

    def describe(self) -> str:
        return f"pad {self.pad}, coverage at {self.level:g} × flat, peak-rel. at {self.threshold:g} × peak"


def _cut(pad: int, level: float, threshold: float) -> Cut:
    """The command's FFT size and coverage cuts, the cuts checked."""
    from ..analysis.spectra import check_level, check_threshold

    check_threshold(threshold)
    check_level(level)
    return Cut(pad, level, threshold)


def _checkpoint(
    checkpoint: Path, layers: list[int] | None, out: Path | None, cut: Cut, as_json: bool
) -> tuple[dict[str, Any], str | None]:
    """Spectra of a checkpoint's depthwise layers: printed, and drawn to ``out``; the JSON payload and the
    figure's path."""
    from ..analysis.spectra import checkpoint_spectra

    result = checkpoint_spectra(checkpoint, layers, pad=cut.pad, threshold=cut.threshold, level=cut.level)
    figure = None
    if out is not None:
        from ..analysis.spectra.plot import plot_checkpoint  # lazy: matplotlib only for a figure

        figure = str(plot_checkpoint(result, out, pad=cut.pad, level=cut.level))
    _print_checkpoint(result, cut, as_json)
    return result.to_dict(), figure


def _plot_drawn(spectra: list[DrawnSpectrum], out: Path | None, cut: Cut) -> str | None:
    """The figure of fresh banks' envelopes, written to ``out`` if given; its path."""
    if out is None:
        return None
    from ..analysis.spectra.plot import plot_drawn  # lazy: matplotlib only for a figure

    return str(plot_drawn(spectra, out, pad=cut.pad, level=cut.level))


def _only_with(what: str, given: list[str]) -> None:
    if given:
        raise ConfigError(f"{', '.join(given)}: only used with {what}")


def _ints(option: str, text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes integers or a comma list of them, got '{text}'") from None
    if not values:
        raise ConfigError(f"{option} needs at least one value")
    return values


def _layers(text: str | None) -> list[int] | None:
    return None if text is None or text.strip().lower() == "all" else _ints("--layer", text)


def _drawn(
    random: str,
    kernel: int | None,
    filters: str | None,
    multiplier: int | None,
    seed: int | None,
    draws: int | None,
    cut: Cut,
) -> list[DrawnSpectrum]:
    from ..analysis.spectra import check_pad, drawn_spectrum

    sizes = _ints("--random", random)
    if kernel is None:
        raise ConfigError("--random needs --kernel K")
    kinds = [k.strip() for k in (filters or "random").split(",")]
    specs = dict.fromkeys(parse_bank(k) for k in kinds)  # an unknown bank or a bad parameter comes first
    d = 1 if multiplier is None else multiplier
    n_draws = 1 if draws is None else draws
    for name, value in {"N": min(sizes), "--kernel": kernel, "--multiplier": d, "--draws": n_draws}.items():
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    check_at_most("--multiplier", d, MAX_MULTIPLIER)
    check_at_most("--draws", n_draws, MAX_DRAWS)
    check_pad(cut.pad, kernel)
    return [
        drawn_spectrum(
            kind,
            n,
            kernel,
            multiplier=d,
            seed=seed or 0,
            draws=n_draws,
            pad=cut.pad,
            threshold=cut.threshold,
            level=cut.level,
        )
        for kind in specs
        for n in sizes
    ]


def _pm(std: float | None) -> str:
    return "-" if std is None else f"±{std:.3f}"


def _print_drawn(spectra: list[DrawnSpectrum], cut: Cut, as_json: bool) -> None:
    columns = [
        "filters",
        "N",
        "kernel",
        "d",
        "draws",
        "coverage",
        "std",
        "peak-rel. coverage",
        "std",
        "high-freq share",
        "std",
    ]
    rows = [
        [
            s.bank.label,
            s.n,
            s.kernel,
            s.multiplier,
            s.draws,
            f"{s.coverage:.3f}",
            _pm(s.coverage_std),
            f"{s.peak_relative_coverage:.3f}",
            _pm(s.peak_relative_coverage_std),
            f"{s.high_freq_share:.3f}",
            _pm(s.high_freq_share_std),
        ]
        for s in spectra
    ]
    title = f"spectral coverage of fresh banks ({cut.describe()}, seed {spectra[0].seed})"
    print_result(table(title, columns, rows), as_json)


def _print_checkpoint(result: CheckpointSpectra, cut: Cut, as_json: bool) -> None:
    columns = ["layer", "module", "n", "kernel", "coverage", "peak-rel. coverage", "high-freq share"]
    rows = [
        [
            x.layer,
            x.name,
            x.spectrum.n,
            x.spectrum.kernel,
            f"{x.spectrum.coverage:.3f}",
            f"{x.spectrum.peak_relative_coverage:.3f}",
            f"{x.spectrum.high_freq_share:.3f}",
        ]
        for x in result.layers
    ]
    title = (
        f"{result.checkpoint}: {result.arch}, learn {result.learn}, filters {result.filters} "
        f"({cut.describe()})"
    )
    print_result(table(title, columns, rows), as_json)
