"""What a config key declares once, on its dataclass field (nanoGPT / timm: one source for each fact).

``TrainConfig``, ``AttackPlan`` and ``BenchSettings`` write each field as ``key(default, help=..., ...)``;
reading and checking a value (:mod:`.coercion`), a command's options, the model's arguments, the keys that
do not change results and the report's short labels are all derived from these specs (:func:`spec` reads
one back).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError, check_choice
from .limits import Bound

# Which model argument a key is: "arch" keys size the architecture (a preset's knobs), "common" keys every
# model takes (learn mode, filter bank, seed), "timm" keys only timm: models take (pretrained, model_args).
# ``model_kwargs`` lists the arch ones, then the dataset's
# in_chans / num_classes, then the common ones, then mean / std: the order checkpoints have always stored.
ModelArg = Literal["arch", "common", "timm"]
Choices = Collection[str] | Callable[[], Iterable[str]]  # a mapping: its names

TRAIN = "train"
UNSHUFFLE = "unshuffle"
ATTACK_COMMAND = "attack"  # its options of config keys train a recipe's runs (all hidden in its --help)
EVERYDAY = (TRAIN, UNSHUFFLE)  # an option of both commands

# The panels a command's --help groups its options in (a key's ``panel``; the CLI's own options name theirs).
MODEL, DATA, OPTIMISATION, ATTACK, OUTPUT, RUNTIME = (
    "Model",
    "Data",
    "Optimisation",
    "Attack",
    "Output",
    "Runtime",
)


@dataclass(frozen=True)
class KeySpec:
    """The facts of one config key. ``choices``: the allowed values (or a function giving them: the
    registries are read when a config is checked); ``check``: a function raising ``ConfigError`` for a
    value (the model registry's own message); ``bounds``: numeric (or pattern) limits, checked in order;
    ``model``: a ``create_model`` argument; ``runtime``: changes how a run executes but not what it
    computes; ``flags``: the commands whose ``--help`` lists its option (every key is an option of every
    command that trains, hidden from the others' ``--help``, and settable with ``--set``);
    ``label``: its short name in a report's setting label (``w128``); ``fraction``: a string like
    ``"1/255"`` is accepted; ``canonical``: the one spelling of a value (``smooth:1.0`` → ``smooth``);
    ``panel``: where its option is listed in ``--help`` (one of the panel names above); ``suggest``: the
    values shell completion offers where ``choices`` does not fix them (a bank's name, then its spec);
    ``parse``: turns what a user wrote into the value (``parse(value, label)``, before the type check: an
    ε list from ``"1/255,2/255"``); ``option``: the option's name where it is not the key's (``--method``
    sets ``methods``; a file may write it too); ``noun``: what a value is called in "unknown <noun> 'x'"
    (default: the key's name)."""

    help: str
    choices: Choices | None = None
    check: Callable[[Any], Any] | None = None
    bounds: tuple[Bound, ...] = ()
    model: ModelArg | None = None
    runtime: bool = False
    flags: tuple[str, ...] = ()
    label: str | None = None
    fraction: bool = False
    canonical: Callable[[Any], Any] | None = None
    panel: str | None = None
    suggest: Choices | None = None
    parse: Callable[[Any, str], Any] | None = None
    option: str | None = None
    noun: str | None = None

    def choice_list(self) -> list[str] | None:
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)

    def upper(self) -> float | None:
        """The largest value the key's bounds allow, or None where none has an upper end."""
        highs = [b.high for b in self.bounds if b.high is not None]
        return min(highs) if highs else None

    def completions(self) -> list[str]:
        """What shell completion offers for the key's option: its choices, else its suggestions."""
        values = self.choices if self.choices is not None else self.suggest
        if values is None:
            return []
        return list(values() if callable(values) else values)

    def validate(self, label: str, name: str, value: Any) -> None:
        """Check one value (``None``, an unset optional key, passes; a list, item by item); errors start
        with ``label``."""
        if value is None:
            return
        for item in value if isinstance(value, list) else [value]:
            try:
                if self.check is not None:
                    self.check(item)
                if self.choices is not None:
                    check_choice(self.noun or name, item, self.choice_list() or [])
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
            for bound in self.bounds:
                bound.check(label, item)


def choices_help(notes: dict[str, str]) -> str:
    """A key's values for its help, each with its note: ``full | chans (spatial frozen) | space (...)``."""
    return " | ".join(f"{name} ({note})" if note else name for name, note in notes.items())


def key(
    default: Any,
    *,
    help: str,  # noqa: A002 - the word every CLI library uses
    choices: Choices | None = None,
    check: Callable[[Any], Any] | None = None,
    bounds: tuple[Bound, ...] | Bound = (),
    model: ModelArg | None = None,
    runtime: bool = False,
    flags: tuple[str, ...] | str = (),
    label: str | None = None,
    fraction: bool = False,
    canonical: Callable[[Any], Any] | None = None,
    panel: str | None = None,
    suggest: Choices | None = None,
    parse: Callable[[Any, str], Any] | None = None,
    option: str | None = None,
    noun: str | None = None,
) -> Any:
    """A dataclass field with its default and its :class:`KeySpec` (a list default is copied for each
    instance)."""
    spec_ = KeySpec(
        help=help,
        choices=choices,
        check=check,
        bounds=(bounds,) if isinstance(bounds, Bound) else bounds,
        model=model,
        runtime=runtime,
        flags=(flags,) if isinstance(flags, str) else flags,
        label=label,
        fraction=fraction,
        canonical=canonical,
        panel=panel,
        suggest=suggest,
        parse=parse,
        option=option,
        noun=noun,
    )
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"spec": spec_})
    return dataclasses.field(default=default, metadata={"spec": spec_})


def spec(field: dataclasses.Field[Any]) -> KeySpec:
    return field.metadata["spec"]


@functools.cache
def specs(cls: type) -> dict[str, KeySpec]:
    """``{key: spec}`` of a dataclass of ``key()`` fields, in field order (read once per class: do not
    change the dict)."""
    return {f.name: spec(f) for f in dataclasses.fields(cls)}


def default_of(field: dataclasses.Field[Any]) -> Any:
    """A field's default value (a list default is made by its factory)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def option_name(cls: type, name: str) -> str:
    """The option of key ``name`` without its dashes: ``method`` for ``methods``, ``batch_size``."""
    return specs(cls)[name].option or name


def flag(cls: type, name: str) -> str:
    """Key ``name``'s option as typed: ``--batch-size``, ``--method``."""
    return "--" + option_name(cls, name).replace("_", "-")


def keys_where(cls: type, test: Callable[[KeySpec], bool]) -> tuple[str, ...]:
    return tuple(name for name, s in specs(cls).items() if test(s))


def describe_keys(cls: type) -> list[dict[str, Any]]:
    """Every key of a dataclass of ``key()`` fields: name, type, default, help (``--list-keys``)."""
    hints = typing.get_type_hints(cls)
    return [
        {"key": f.name, "type": _type_text(hints[f.name]), "default": default_of(f), "help": spec(f).help}
        for f in dataclasses.fields(cls)
    ]


def _type_text(hint: Any) -> str:
    if typing.get_origin(hint) is list:
        return f"list of {_type_text(typing.get_args(hint)[0])}"
    args = typing.get_args(hint)
    names = [getattr(a, "__name__", str(a)) for a in args] if args else [getattr(hint, "__name__", str(hint))]
    return " | ".join("null" if n == "NoneType" else n for n in names)
