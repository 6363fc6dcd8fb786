"""``spatialmix run RECIPE [OPTIONS]``: a recipe run with the command it names (its ``command:``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from . import options as opt
from .output import print_error

# The options after RECIPE are the named command's: run takes them as they are and passes them on.
RUN_CONTEXT: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True}


EXAMPLES = opt.examples(
    "spatialmix run recipes/demo.yaml --out runs/demo --json",
    "spatialmix run recipes/fig6.yaml --list",
    "spatialmix run recipes/fig6.yaml --index 0",
)  # the --help epilog


@opt.with_panels()
def run_command(
    ctx: typer.Context,
    recipe: Annotated[
        Path, typer.Argument(help="YAML recipe; its `command:` names the command.", show_default=False)
    ],
    debug: opt.Debug = False,
) -> Any:
    """Run a recipe with the command it names: `spatialmix run R --out D --json` is `spatialmix <command>
    --recipe R --out D --json`, <command> being the recipe's `command:` (train, attack or unshuffle; by
    default attack with an attack section, unshuffle with task: unshuffle, else train). Every option of
    that command works (give them after RECIPE); see `spatialmix <command> --help`. `--list` prints the
    recipe's points and their status (each of these commands has it), `--index I` runs only point I."""
    from ..config.recipes import named_command

    if any(a in ("--recipe", "-r") or a.startswith("--recipe=") for a in ctx.args):
        raise ConfigError("`spatialmix run` takes the recipe as its argument, not --recipe")
    name = named_command(recipe)
    group = ctx.parent.command if ctx.parent is not None else None  # the `spatialmix` group
    command = group.get_command(ctx.parent, name) if hasattr(group, "get_command") else None
    if command is None:
        raise RuntimeError(f"`spatialmix {name}` is not a registered command")
    argv = ["--recipe", str(recipe), *ctx.args, *(["--debug"] if debug else [])]
    try:
        with command.make_context(name, argv, parent=ctx.parent) as sub:
            return command.invoke(sub)
    except typer.TyperException as exc:  # a usage error, said as `spatialmix` says one: one line, exit 2
        print_error(f"{exc.format_message()} (see 'spatialmix {name} --help')")
        raise typer.Exit(exc.exit_code) from None
