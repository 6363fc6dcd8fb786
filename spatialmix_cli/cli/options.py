"""Option aliases shared by several commands (defined once, as huggingface_hub's CLI does), and the
options of config keys, generated from the keys' fields (:func:`with_config_options`)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.models import OptionInfo

from ..config.coercion import hints
from ..config.keys import (
    ATTACK,
    DATA,
    MODEL,
    OPTIMISATION,
    OUTPUT,
    RUNTIME,
    KeySpec,
    default_of,
    option_name,
    spec,
    specs,
)
from ..config.numbers import format_eps
from ..config.train import TrainConfig
from ..errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
# the data and device keys, for commands that read data without training (their help is the keys')
DataDir = Annotated[
    str | None,
    typer.Option("--data-dir", help=specs(TrainConfig)["data_dir"].help, show_default=False),
]
Device = Annotated[
    str | None, typer.Option("--device", help=specs(TrainConfig)["device"].help, show_default=False)
]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Seed for init, filters, data order.", show_default=False)
]
Out = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run directory (or root of a recipe's run directories).")
]
BatchSize = Annotated[
    int | None, typer.Option("--batch-size", "-b", help="Images per step.", show_default=False)
]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the unfinished run in --out.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the run files in --out.")]
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
        metavar="KEY=VALUE",
    ),
]


RUNS = "Runs"  # what to run: a recipe, which of its points, overrides of its keys
PANEL_ORDER = (RUNS, MODEL, DATA, OPTIMISATION, ATTACK, RUNTIME, OUTPUT)  # a panel not listed: before Output
# The --help panel of each option by its parameter's name (a config key's own ``panel`` comes first; a
# command gives the names that mean something else there to :func:`with_panels`).
PANELS = {
    **dict.fromkeys(["recipe", "config_file", "list_points", "index", "set_", "eval_"], RUNS),
    **dict.fromkeys(["preset", "learn", "filters", "kernel", "multiplier"], MODEL),
    **dict.fromkeys(["data_dir", "dataset", "download", "image_size", "n"], DATA),
    **dict.fromkeys(["epochs", "lr"], OPTIMISATION),
    **dict.fromkeys(["source"], ATTACK),
    **dict.fromkeys(["device", "seed", "batch_size"], RUNTIME),
    **dict.fromkeys(
        [
            "out",
            "resume",
            "overwrite",
            "dry_run",
            "list_models_",
            "list_keys",
            "save",
            "grid",
            "format_",
            "screenshot",
            "draws",
            "json_",
            "debug",
        ],
        OUTPUT,
    ),
}


def with_panels(**overrides: str) -> Callable[[F], F]:
    """Put each option of a command in its ``--help`` panel: ``overrides`` (parameter name → panel), else
    :data:`PANELS`; an option that names its own ``rich_help_panel`` keeps it. The panels are listed in
    :data:`PANEL_ORDER` (arguments first, each option's order within its panel kept). Apply it after
    :func:`with_config_options` (i.e. write it above), so the generated options are placed too."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        params = [
            _in_panel(p, overrides.get(p.name, PANELS.get(p.name))) for p in signature.parameters.values()
        ]
        params.sort(key=_panel_rank)  # stable: arguments keep their order
        func.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        func.__annotations__.update({p.name: p.annotation for p in params})
        return func

    return decorate


def _in_panel(param: inspect.Parameter, panel: str | None) -> inspect.Parameter:
    """``param`` with its option (a copy: the aliases above are shared) in ``panel``."""
    if panel is None or typing.get_origin(param.annotation) is not Annotated:
        return param
    base, *meta = typing.get_args(param.annotation)
    infos = [m for m in meta if isinstance(m, OptionInfo) and m.rich_help_panel is None]
    if not infos:
        return param
    info = copy.copy(infos[0])
    info.rich_help_panel = panel
    meta = [info if m is infos[0] else m for m in meta]
    return param.replace(annotation=Annotated[(base, *meta)])


def _panel_rank(param: inspect.Parameter) -> int:
    info = next((m for m in typing.get_args(param.annotation)[1:] if isinstance(m, OptionInfo)), None)
    panel = None if info is None else info.rich_help_panel
    if panel is None:
        return -1  # arguments, and options in no panel
    return 2 * PANEL_ORDER.index(panel) if panel in PANEL_ORDER else 2 * PANEL_ORDER.index(OUTPUT) - 1


def _shown_default(default: Any, flag: str, fraction: bool) -> str | bool:
    """What ``--help`` shows as a key option's default: the key's default (``--x`` / ``--no-x`` for a
    flag; a list as it is typed, ``fgsm``; a key that takes fractions shows one, ``1/255``); nothing for
    ``None``, whose meaning the help text gives."""
    if default is None:
        return False
    if isinstance(default, bool):
        return flag if default else f"--no-{flag[2:]}"
    items = default if isinstance(default, list) else [default]
    return ",".join(format_eps(i) if fraction and isinstance(i, float) else str(i) for i in items)


# Short aliases of config options (the ones typed most).
SHORT = {"batch_size": "-b"}


def config_option(name: str, *, shown: bool = True, keys: type = TrainConfig) -> inspect.Parameter:
    """The option of key ``name`` of ``keys`` (a dataclass of ``key()`` fields), built from its field: type,
    help, panel, default (its ``key()``; the option itself defaults to None, "not given"), and completion
    of its choices. Its name is the key's (or its spec's ``option``: ``--method``); a key its own parsing
    reads (a list, a fraction) is typed as text. Not ``shown``: left out of ``--help`` (still listed by
    ``--list-keys``, and it works)."""
    field = next(f for f in dataclasses.fields(keys) if f.name == name)
    key = spec(field)
    hint = hints(keys)[name]
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if typing.get_origin(base) is list or key.fraction or key.parse is not None:
        base = str
    param = option_name(keys, name)
    flag = "--" + param.replace("_", "-")
    decls = [f"{flag}/--no-{flag[2:]}" if base is bool else flag, *([SHORT[name]] if name in SHORT else [])]
    option = typer.Option(
        *decls,
        help=key.help,
        show_default=_shown_default(default_of(field), flag, key.fraction),
        rich_help_panel=key.panel,
        hidden=not shown,
        autocompletion=completer(key.completions),
    )
    return inspect.Parameter(
        param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[base | None, option]
    )


def completer(values: Callable[[], Iterable[str]]) -> Callable[[str], list[str]]:
    """Shell completion of an option: its ``values`` (read from the registry when asked) that start with
    what was typed."""

    def complete(incomplete: str) -> list[str]:
        return [v for v in values() if v.startswith(incomplete)]

    return complete


def with_config_options(command: str) -> Callable[[F], F]:
    """Give a function ending in ``**config`` one option per :class:`TrainConfig` key (typer builds its
    options from the signature; the values arrive in ``config``, ``None`` when not given): the keys declared
    a flag of ``command`` in ``--help``, every other one hidden there but working (``--list-keys`` lists
    them). A key the command has a parameter of its own for (attack's ``--seed``) is left to that parameter.
    They go in field order before ``--set``, so ``--help`` reads as it did."""
    return _with_options(TrainConfig, lambda s: command in s.flags, before="set_")


def with_key_options(keys: type, *, before: str) -> Callable[[F], F]:
    """Give a function ending in ``**config`` one option per key of ``keys``, the command's own settings
    (the attack plan, the bench settings), each shown in ``--help``; they go before parameter ``before``.
    Apply it below :func:`with_config_options`, whose keys then leave these to it."""
    return _with_options(keys, lambda s: True, before=before)


def _with_options(keys: type, shown: Callable[[KeySpec], bool], *, before: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)  # the real annotations, not strings
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
        own = {p.name for p in params}
        added = [
            config_option(n, shown=shown(s), keys=keys)
            for n, s in specs(keys).items()
            if option_name(keys, n) not in own
        ]
        at = next((i for i, p in enumerate(params) if p.name == before), len(params))
        params[at:at] = added
        func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return func

    return decorate


def take_keys(config: dict[str, Any], keys: type) -> dict[str, Any]:
    """The options of ``keys`` given on the command line, removed from ``config`` (a command's ``**config``
    that holds the options of two key classes), by option name (``method``: ``AttackPlan`` reads it)."""
    names = [option_name(keys, n) for n in specs(keys)]
    return given_config({n: config.pop(n) for n in names if n in config})


def examples(*lines: str) -> str:
    """A command's ``--help`` epilog: each example command on its own line."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)


def given_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config options given on the command line (typer passes ``None`` for the others)."""
    return {k: v for k, v in config.items() if v is not None}


def config_overrides(config: dict[str, Any], set_: list[str] | None) -> dict[str, Any]:
    """The config keys given on the command line: the options' values and ``--set KEY=VALUE``'s; a key
    given both ways is refused (neither silently wins)."""
    from ..config.recipes import parse_set  # reads YAML and checks values: the library, when a command runs

    given, parsed = given_config(config), parse_set(set_)
    both = [k for k in given if k in parsed]
    if both:
        flag = "--" + both[0].replace("_", "-")
        raise ConfigError(f"{flag} and --set {both[0]}=... both give '{both[0]}'; give it once")
    return {**given, **parsed}


# the checkpoints of eval and info
Targets = Annotated[
    list[str],
    typer.Argument(
        help="Checkpoints (.safetensors) or run directories; - reads them from stdin (one path a line, or "
        "the JSON lines of `spatialmix train --json`).",
        show_default=False,
        metavar="TARGETS",
    ),
]


def value_name(param: Any) -> str:
    """The placeholder ``--help`` shows for a parameter's value: nothing for a flag, INT / FLOAT / PATH by
    type, else the parameter's name (``--arch ARCH``); ``...`` after a list argument. typer's own would be a
    Python type (``<bool>``, ``<list[str]>``)."""
    if getattr(param, "is_flag", False):
        return ""
    desc = param.type_descriptor
    item = typing.get_args(desc.annotation)[0] if desc.is_list else desc.annotation
    if param.param_type_name == "argument":  # usage adds "..." to a list: `[TARGETS]...`
        return (param.name or "value").upper()
    if (param.name or "").endswith("_dir"):
        return "DIR"
    return {int: "INT", float: "FLOAT", Path: "PATH"}.get(item) or (param.name or "value").strip("_").upper()


class _Argument(TyperArgument):
    """An argument whose ``--help`` row has its name and help, without typer's type column
    (``<list[Path]>``): typer builds its parameters itself, so :func:`_readable` gives an argument this
    class (same slots, one method more), typer having no setting for the column."""

    __slots__ = ()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _readable(params: list[Any]) -> list[Any]:
    """``params`` with value names (:func:`value_name`), arguments without a type column."""
    for param in params:
        if param.metavar is None:
            param.metavar = value_name(param)
        if type(param) is TyperArgument:
            param.__class__ = _Argument
    return params


@contextlib.contextmanager
def _defaults_as_values(command: Any, ctx: Any) -> Iterator[None]:
    """While help is written: a written default (``show_default="paper"``) shown as the value it stands
    for, ``[default: paper]`` (typer writes ``[default: (paper)]``): given to the context's
    ``default_map``, or for a flag (``"--no-hflip"``) as its default, only for the help: the options still
    default to None, "not given"."""
    written = {p.name: p for p in command.get_params(ctx) if isinstance(p.show_default, str) and p.name}
    saved = {name: (p.show_default, p.default) for name, p in written.items()}
    default_map = ctx.default_map
    ctx.default_map = {**(default_map or {})}
    for name, param in written.items():
        if getattr(param, "is_flag", False):
            param.default = not param.show_default.startswith("--no-")
        else:
            ctx.default_map[name] = param.show_default
        param.show_default = True
    try:
        yield
    finally:
        ctx.default_map = default_map
        for name, param in written.items():
            param.show_default, param.default = saved[name]


class Command(TyperCommand):
    """A command whose ``--help`` names values (``--epochs INT``, ``--arch ARCH``, flags bare) and prints
    defaults as values."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _defaults_as_values(self, ctx):
            super().format_help(ctx, formatter)


class Group(TyperGroup):
    """The ``spatialmix`` group, its options shown as :class:`Command` shows a command's."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))
