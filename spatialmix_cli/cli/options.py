"""Option aliases shared by several commands (defined once, as huggingface_hub's CLI does), and the
options of config keys, generated from the keys' fields (:func:`with_config_options`)."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..config import TrainConfig
from ..keyspec import spec, specs

F = TypeVar("F", bound=Callable[..., Any])

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
DataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="Dataset folder (torchvision layout). Default: $SPATIALMIX_DATA, ../shared/datasets, then download.",
        show_default=False,
    ),
]
Device = Annotated[
    str | None, typer.Option("--device", help="auto | cpu | cuda | cuda:N.", show_default=False)
]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Seed for init, filters, data order.", show_default=False)
]
Out = Annotated[
    Path | None, typer.Option("--out", help="Run directory (or root of a recipe's run directories).")
]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Images per step.", show_default=False)]
ListPoints = Annotated[
    bool,
    typer.Option(
        "--list",
        help="Print the recipe's points as JSON lines, each with its status (finished, unfinished, busy, "
        "other-config or new: what training would do); run nothing, write nothing.",
    ),
]
Index = Annotated[
    int | None, typer.Option("--index", help="Run only point I of the recipe (0-based; see --list).")
]
Set = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Any config key: --set KEY=VALUE (repeatable); `spatialmix train --list-keys` lists them all.",
    ),
]


def config_option(name: str) -> inspect.Parameter:
    """The ``--name`` option of config key ``name``, built from its field: type, help (its ``key()``)."""
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    hint = typing.get_type_hints(TrainConfig)[name]
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    flag = "--" + name.replace("_", "-")
    decl = f"{flag}/--no-{flag[2:]}" if base is bool else flag
    option = typer.Option(decl, help=spec(field).help, show_default=False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[base | None, option])  # fmt: skip


def with_config_options(command: str) -> Callable[[F], F]:
    """Give a function ending in ``**config`` one option per config key declared a flag of ``command``
    (typer builds its options from the signature; the values arrive in ``config``, ``None`` when not
    given). They go in field order before ``--set``, so ``--help`` reads as it did."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)  # the real annotations, not strings
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
        names = [n for n, s in specs(TrainConfig).items() if command in s.flags]
        at = next((i for i, p in enumerate(params) if p.name == "set_"), len(params))
        params[at:at] = [config_option(n) for n in names]
        func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return func

    return decorate


def given_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config options given on the command line (typer passes ``None`` for the others)."""
    return {k: v for k, v in config.items() if v is not None}
