"""ε lists as users write them: ``1/255,2/255,0.01``; each in [0, 1] (pixel units of images in [0, 1])."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from .numbers import parse_number


def parse_eps(value: str | float | Sequence[str | float], what: str = "--eps") -> list[float]:
    """A comma-separated string (or a list) of ε values → floats in [0, 1], in the order given."""
    items: list[str | float]
    if isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{what} must be a number, a fraction like 1/255, or a list of them, got {value!r}")
    if not items:
        raise ConfigError(f"{what} needs at least one value, such as 1/255")
    out: list[float] = []
    for item in items:
        eps = parse_number(item.strip() if isinstance(item, str) else item, what)
        if not 0 <= eps <= 1:
            raise ConfigError(f"{what} values must be in [0, 1] (pixel units), got '{item}'")
        out.append(eps)
    return out
