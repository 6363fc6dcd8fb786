"""Filter bank specs: each bank's name and parameters (defaults, checks, symbols), and the spec grammar.

A bank is chosen by a *spec*, ``name[:value...]`` (``smooth:1.5``; parameters positional in declaration
order, or ``key=value``), parsed into a :class:`BankSpec` by :func:`parse_bank`; :func:`format_bank` prints
it back in canonical form, leaving out trailing default values, so ``smooth:1`` prints as plain ``smooth``.
The builders (torch) live in :mod:`spatialmix_cli.layers.filter_banks`, keyed by the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import ConfigError, check_choice, did_you_mean
from .limits import check_sigma


class BankParam(NamedTuple):
    """One parameter of a bank: its default, a check that raises a ConfigError naming the allowed range,
    and the symbol that labels it in tables and figures."""

    default: float
    check: Callable[[float], None]
    symbol: str


def _check_smooth_sigma(sigma: float) -> None:
    check_sigma("smooth:σ", sigma)  # as the spec writes it: filters smooth:0.5


# Every bank by name, with its parameters in declaration order (the order a spec's positional values take).
BANKS: dict[str, Mapping[str, BankParam]] = {
    "random": {},  # independent filters for every output (the default init)
    "same": {},  # one random bank of depth_multiplier filters, repeated for every input channel
    "box": {},  # the mean filter everywhere
    "identity": {},  # the centred delta everywhere
    "smooth": {
        "sigma": BankParam(1.0, _check_smooth_sigma, "σ")
    },  # random, low-passed by a Gaussian of σ taps
    "pretrained": {},  # keep the filters the model was built with (timm's pretrained ones, else its own init)
}
BANK_NAMES: tuple[str, ...] = tuple(BANKS)
# The bank that keeps a model's own filters; every other bank draws filters of its own (what `spatialmix
# spectrum --random` can analyse).
KEEPS_OWN = "pretrained"
DRAWN_BANKS: tuple[str, ...] = tuple(name for name in BANKS if name != KEEPS_OWN)


@dataclass(frozen=True)
class BankSpec:
    """A bank and the value of each of its parameters (every parameter present: defaults filled in).
    ``str(spec)`` is the canonical text form (:func:`format_bank`)."""

    name: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_bank(self)

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.params.items())))

    @property
    def label(self) -> str:
        """Name and every parameter, for tables and figures: ``smooth σ=1``, ``random``."""
        symbols = BANKS[self.name]
        return " ".join([self.name, *(f"{symbols[k].symbol}={v:g}" for k, v in self.params.items())])


def bank_spec(name: str, params: Mapping[str, float] | None = None) -> BankSpec:
    """A checked :class:`BankSpec`: ``name`` a registered bank, ``params`` some of its parameters (the
    others take their defaults), each within its range."""
    declared = BANKS[check_choice("filter bank", name, BANKS)]
    given = dict(params or {})
    for key, value in given.items():
        if key not in declared:
            allowed = ", ".join(declared) or "none"
            raise ConfigError(
                f"filter bank '{name}' has no parameter '{key}'{did_you_mean(key, declared)}; "
                f"its parameters: {allowed}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"filter bank '{name}' parameter '{key}' must be a number, got {value!r}")
    values = {key: float(given.get(key, p.default)) for key, p in declared.items()}
    for key, value in values.items():
        declared[key].check(value)
    return BankSpec(name, values)


def parse_bank(spec: str | BankSpec) -> BankSpec:
    """``"smooth:1.5"`` -> ``BankSpec("smooth", {"sigma": 1.5})``; ``"smooth"`` takes the default σ 1.0.
    Values are positional (in the order the bank declares its parameters) or ``key=value``."""
    if isinstance(spec, BankSpec):
        return bank_spec(spec.name, spec.params)
    if not isinstance(spec, str):
        raise ConfigError(
            f"a filter bank is a name such as 'random' or a spec such as 'smooth:1.5', got {spec!r}"
        )
    name, *parts = spec.split(":")
    keys, params = list(BANKS[check_choice("filter bank", name, BANKS)]), {}
    if len(parts) > len(keys):
        takes = f"{len(keys)} parameter(s): {', '.join(keys)}" if keys else "no parameters"
        raise ConfigError(f"filter bank '{name}' takes {takes}; got '{spec}'")
    for position, part in enumerate(parts):
        key, _, text = part.rpartition("=")
        key = key or keys[position]
        try:
            params[key] = float(text)
        except ValueError:
            raise ConfigError(
                f"filter bank '{name}' parameter '{key}' must be a number, got '{text}'"
            ) from None
    return bank_spec(name, params)


def _number(value: float) -> str:
    """The shortest text that reads back as ``value`` (``2``, ``1.5``, ``0.1``)."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def format_bank(spec: str | BankSpec) -> str:
    """Canonical text form: the name, then the parameter values up to the last one that differs from its
    default (``smooth:2``; ``smooth`` at σ 1: one spelling per bank, so equal configs compare equal)."""
    spec = parse_bank(spec)
    defaults = [p.default for p in BANKS[spec.name].values()]
    values = list(spec.params.values())
    while values and values[-1] == defaults[len(values) - 1]:
        values.pop()
    return ":".join([spec.name, *map(_number, values)])


def check_filters(spec: str) -> None:
    """A bank name (the ``filters`` key's message for an unknown one) with its parameters, if any."""
    check_choice("filters", spec.partition(":")[0], BANKS)
    format_bank(spec)


def smooth_sigma_of(spec: BankSpec) -> float | None:
    """σ of a ``smooth`` bank, None for the others: the ``smooth_sigma`` column of attack rows and bank
    spectra (beside ``filters``, the bank's name), so a table of records reads σ without parsing specs."""
    return spec.params["sigma"] if spec.name == "smooth" else None
