"""Numbers users type: ``1/255``, ``0.004``, ``2e-3``; and the way we print them back."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from ..errors import ConfigError

_FRACTION = re.compile(r"\s*([+-]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*")


def is_finite_number(value: object) -> bool:
    """An int or float (never a bool) that is finite: the check every record read from a file needs."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_number(text: str | float | int, what: str = "value") -> float:
    """``"1/255"`` → 0.00392…, ``"0.5"`` → 0.5; anything else is a ConfigError naming ``what``."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ConfigError(f"{what} must be a number or a fraction like 1/255, got {text!r}")
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:  # an int too large for a float
            raise ConfigError(f"{what} must be finite, got {text!r}") from None
    else:
        match = _FRACTION.fullmatch(text)
        try:
            if match:
                value = float(match.group(1)) / float(match.group(2))
            else:
                value = float(text)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"{what} must be a number or a fraction like 1/255, got '{text}'") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got '{text}'")
    return value


def format_eps(eps: float) -> str:
    """``1/255`` for multiples of 1/255 (how the paper writes ε), else a short decimal."""
    if eps == 0:
        return "0"
    frac = Fraction(eps).limit_denominator(255)
    if frac.denominator == 255 and abs(float(frac) - eps) < 1e-9:
        return f"{frac.numerator}/255"
    if abs(eps * 255 - round(eps * 255)) < 1e-6:
        return f"{round(eps * 255)}/255"
    return f"{eps:.4g}"
