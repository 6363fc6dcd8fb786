"""One checker for every dataclass of ``key()`` fields (:class:`~.train.TrainConfig`, the attack plan,
the bench settings): a value's type from the field's type hint, its parsing and spelling from its
:class:`~.keys.KeySpec`, then each key's choices and bounds. The rules across keys stay with each class.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from typing import Any, TypeVar

from ..errors import ConfigError, did_you_mean
from .keys import KeySpec, flag, specs
from .numbers import parse_number

T = TypeVar("T")

# The largest magnitude a float key may have: the optimizer works in float32 (max 3.4e38) and scales the lr
# by up to ~1e3 (Adam's bias correction, warm-up), so 1e30 keeps every step finite. A run that diverges
# from a large lr then stops with "training loss became inf" (exit 1) instead of failing inside torch.
FLOAT_LIMIT = 1e30
OPTION = "option"  # the ``where`` of values given as command-line options: errors name the option
_SCIENTIFIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+\s*")
_WRONG = object()  # a value of the wrong type


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def key_label(cls: type, where: str, name: str, options: bool = False) -> str:
    """How errors name key ``name``: its option (``--large-eps``) where ``options`` and the values came
    as options (``where`` is :data:`OPTION`), else ``where.name`` (``recipe.yaml: attack.large_eps``)."""
    return flag(cls, name) if options and where == OPTION else f"{where}.{name}"


def coerce(cls: type, name: str, value: Any, where: str = "config", label: str | None = None) -> Any:
    """``value`` for key ``name`` of ``cls``: parsed (the key's ``parse``), of the field's type (ints are
    accepted for floats, bools are never numbers; a list's items each), in its one spelling (``canonical``).
    Errors name ``label`` (default ``where.name``)."""
    if name not in hints(cls):
        raise ConfigError(f"{where}: unknown key '{name}'{did_you_mean(str(name), _spellings(cls))}")
    label = label or f"{where}.{name}"
    key_spec = specs(cls)[name]
    if key_spec.parse is not None and value is not None:
        value = key_spec.parse(value, label)
    hint = hints(cls)[name]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if value is None:
        if optional:
            return None
    elif typing.get_origin(base) is list:
        if isinstance(value, list):
            items = [_scalar(typing.get_args(base)[0], key_spec, item, label) for item in value]
            if _WRONG not in items:
                return items
    else:
        out = _scalar(base, key_spec, value, label)
        if out is not _WRONG:
            return out
    if key_spec.choices is not None:
        choices = ", ".join(key_spec.choice_list() or [])
        raise ConfigError(f"{label} must be one of {choices}, got {value!r}")
    raise ConfigError(f"{label} must be {_type_name(hint)}, got {value!r} ({type(value).__name__})")


def _scalar(base: Any, key_spec: KeySpec, value: Any, label: str) -> Any:
    """``value`` as a ``base`` (bool, int, float or str), or ``_WRONG``."""
    if base is bool:
        return value if isinstance(value, bool) else _WRONG
    if isinstance(value, bool):
        return _WRONG
    if base is int:
        return value if isinstance(value, int) else _WRONG
    if base is float:
        if isinstance(value, str) and key_spec.fraction and not _SCIENTIFIC.fullmatch(value):
            return _finite(parse_number(value, label), label)
        # A string like "1e-3" is a number: YAML 1.1 (PyYAML) reads 1e-3 without a dot as text.
        if isinstance(value, (int, float)) or (isinstance(value, str) and _SCIENTIFIC.fullmatch(value)):
            return _finite(float(value), label)
        return _WRONG
    if base is str and isinstance(value, str):
        if key_spec.canonical is None:
            return value
        try:  # one spelling per value (``smooth:1.0`` is ``smooth``), so equal configs compare equal
            return key_spec.canonical(value)
        except ConfigError:
            return value  # validate() names the problem, with its usual message
    return _WRONG


def _finite(value: float, label: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{label} must be a finite number, got {value!r}")
    if abs(value) > FLOAT_LIMIT:
        raise ConfigError(f"{label} must be at most {FLOAT_LIMIT:g} in size, got {value!r}")
    return value


def _type_name(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args and typing.get_origin(hint) is not list else hint
    if typing.get_origin(base) is list:
        name = f"a list of {_type_name(typing.get_args(base)[0]).split(' ', 1)[1]}s"
    else:
        name = {int: "an integer", float: "a number", str: "a string", bool: "true/false"}[base]
    return f"{name} or null" if type(None) in typing.get_args(hint) else name


def _spellings(cls: type) -> list[str]:
    """The names a mapping may give a key of ``cls`` by: its own and its option's."""
    return [*hints(cls), *(s.option for s in specs(cls).values() if s.option)]


def validate_keys(obj: Any, where: str, options: bool = False) -> None:
    """Check every key of ``obj`` on its own (its declared check, choices and bounds)."""
    cls = type(obj)
    for name, key_spec in specs(cls).items():
        key_spec.validate(key_label(cls, where, name, options), name, getattr(obj, name))


def updated(obj: T, data: Any, where: str, *, what: str, options: bool = False) -> T:
    """A copy of ``obj`` with ``data`` (a mapping of its keys; an option's name is accepted for its key)
    applied, each value coerced; the copy is validated by its own ``validate(where)``. ``what`` names the
    mapping in an error (``config keys``); ``options``: errors name options (:func:`key_label`)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of {what}, got {type(data).__name__}")
    cls = type(obj)
    names = {s.option: n for n, s in specs(cls).items() if s.option}
    values = {}
    for given, value in data.items():
        name = names.get(given, given)
        label = key_label(cls, where, name, options) if name in hints(cls) else None
        values[name] = coerce(cls, name, value, where, label)
    # replace(), not asdict(): asdict's deep copies made a recipe of 10^4 points take seconds to list
    new = dataclasses.replace(obj, **values)  # type: ignore[type-var]
    new.validate(where)  # type: ignore[attr-defined]
    return new
