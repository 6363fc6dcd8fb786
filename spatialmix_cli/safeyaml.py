"""The one way this package reads YAML: ``yaml.safe_load`` (no object construction, no code), with every
way it can fail on a hostile or damaged file turned into a ConfigError that says where."""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError


def parse_yaml(text: str, where: str) -> Any:
    """Parse ``text`` with ``yaml.safe_load``. Besides YAMLError, safe_load raises ValueError for bad
    timestamps (``2001-13-45``) and RecursionError for very deep nesting; all become a ConfigError."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ConfigError(f"{where}: invalid YAML: {type(exc).__name__}: {exc}") from None
