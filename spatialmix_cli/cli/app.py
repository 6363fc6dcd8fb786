"""The ``spatialmix`` command: wires the subcommands together; each lives in its own module."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from .. import __version__
from ..training.allocator import tune_malloc_from_env
from . import attack, bench, info, report, run, spectrum, train, unshuffle
from . import eval as eval_
from .options import Command, Group, examples
from .output import handled_errors, print_error

# Help outside a terminal (a pipe, a file, a test) is this wide unless COLUMNS / TERMINAL_WIDTH say
# otherwise, so option names and defaults are not squeezed into 80 columns.
HELP_WIDTH = 120

app = typer.Typer(
    name="spatialmix",
    help="Train, attack, inspect and report on models whose spatial mixing is frozen at random init.",
    epilog=examples(
        "spatialmix train --dataset synthetic --epochs 1 --learn chans",
        "spatialmix run recipes/demo.yaml --out runs/demo && spatialmix report runs/demo --out report",
        "spatialmix attack --help",
    ),
    add_completion=True,  # --install-completion / --show-completion (typer's; nothing runs unless given)
    pretty_exceptions_enable=False,
    cls=Group,
)


def _errors_handled(command: Callable[..., Any]) -> Callable[..., Any]:
    """The one place a command's exceptions become one ``error:`` line and an exit code (each command
    declares ``--debug``, which shows the traceback instead)."""

    @functools.wraps(command)  # typer reads the options from the wrapped signature
    def run(*args: Any, **kwargs: Any) -> Any:
        with handled_errors(bool(kwargs.get("debug", False))):
            return command(*args, **kwargs)

    return run


def _recipe_checked(name: str, command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` (one that runs recipes) checking first that it can run its ``--recipe``, whose
    ``command:`` may name another (``recipes.check_command``)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("recipe") is not None:
            from ..config.recipes import check_command

            check_command(kwargs["recipe"], name)
        return command(*args, **kwargs)

    return run


for _name, (_command, _examples) in {
    "train": (_recipe_checked("train", train.train_command), train.EXAMPLES),
    "attack": (_recipe_checked("attack", attack.attack_command), attack.EXAMPLES),
    "unshuffle": (_recipe_checked("unshuffle", unshuffle.unshuffle_command), unshuffle.EXAMPLES),
    "eval": (eval_.eval_command, eval_.EXAMPLES),
    "info": (info.info_command, info.EXAMPLES),
    "spectrum": (spectrum.spectrum_command, spectrum.EXAMPLES),
    "report": (report.report_command, report.EXAMPLES),
    "bench": (bench.bench_command, bench.EXAMPLES),
}.items():
    app.command(_name, epilog=_examples, cls=Command)(_errors_handled(_command))
app.command("run", context_settings=run.RUN_CONTEXT, epilog=run.EXAMPLES, cls=Command)(
    _errors_handled(run.run_command)
)


def widen_help() -> None:
    """Help written to a pipe or a file is :data:`HELP_WIDTH` wide (rich would take 80 columns), unless
    the environment sets a width; a terminal keeps its own width."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH"):
        return
    import typer.rich_utils  # typer imports it for help anyway

    typer.rich_utils.MAX_WIDTH = HELP_WIDTH


def version_line() -> str:
    """``spatialmix X.Y.Z (torch A.B.C, Python D.E.F)``; torch's version is read from its package
    metadata, so printing it imports nothing."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    return f"spatialmix {__version__} (torch {torch_version}, Python {platform.python_version()})"


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(version_line() + "\n")
        raise typer.Exit(0)


Version = Annotated[
    bool,
    typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
]


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context, version: Version = False) -> None:
    """spatialmix: reproduce 'Rethinking the Role of Spatial Mixing' (Cazenavette, Julin, Lucey 2025)."""
    if ctx.invoked_subcommand is None:  # bare `spatialmix`: the help, and success (not a usage error)
        sys.stdout.write(ctx.get_help() + "\n")
        raise typer.Exit(0)
    # Process-wide and speed-only: freed activations stay in the process (2x faster CPU training here;
    # see allocator.py). SPATIALMIX_MALLOC=default opts out.
    tune_malloc_from_env()


def main() -> None:
    """Console-script entry point: usage errors also become one line on stderr (exit code 2)."""
    widen_help()
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors (bad option value, unknown option, ...)
        command = " ".join(a for a in sys.argv[1:2] if not a.startswith("-"))
        print_error(f"{exc.format_message()} (see 'spatialmix {command} --help')".replace("  ", " "))
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
