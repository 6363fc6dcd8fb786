"""The one way this package reads YAML: ``yaml.safe_load(text)`` — PyYAML's SafeLoader, which constructs
only plain scalars, lists and mappings (no objects, no code) — made strict in two ways, with every way it
can fail on a hostile or damaged file turned into a ConfigError that says where:

- a mapping that repeats a key (``base: {epochs: 1, epochs: 2}``) is an error naming the key and its line
  (SafeLoader silently keeps the last one);
- a document whose size, with every alias expanded, exceeds ``MAX_VALUES`` values is refused. Aliases stay
  shared references after loading, so a "billion laughs" file (nested anchors, each aliased ten times) is
  small in memory until something walks or prints it — a validation message's ``repr``, a config dump —
  which would expand it to billions of values. Recursive aliases (``&a [*a]``) are refused the same way.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError

MAX_VALUES = 100_000  # scalars + lists + mappings, aliases counted as expanded; recipes hold a few hundred


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse a repeated key; construction is SafeLoader's own (safe). Keys a
    merge (``<<: *base``) brings in may be overridden, as YAML intends; only keys written twice are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error says so below
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r} (first at line {first})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(data: Any, limit: int) -> int:
    """The number of values in ``data`` with shared references counted every time they are reached, as
    a walk or a dump would expand them; stops as soon as the count passes ``limit`` (so a recursive
    structure or a billion-laughs document costs at most ``limit`` steps)."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def parse_yaml(text: str, where: str) -> Any:
    """Parse ``text`` with the strict SafeLoader above. Besides YAMLError, SafeLoader raises ValueError for
    bad timestamps (``2001-13-45``) and RecursionError for very deep nesting; all become a ConfigError,
    as do repeated keys and documents larger than ``MAX_VALUES`` values once aliases are expanded."""
    try:
        loader = _StrictLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ConfigError(f"{where}: invalid YAML: {type(exc).__name__}: {exc}") from None
    if _expanded_size(data, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(
            f"{where}: the YAML document holds more than {MAX_VALUES} values once its aliases (*name) are "
            "expanded (nested or recursive anchors, a 'billion laughs' file?); write the values out"
        )
    return data
