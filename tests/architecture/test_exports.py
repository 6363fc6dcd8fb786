"""Every name a subpackage exports is read from it somewhere: an export that nothing imports is dead code
(the package root is exempt: it is the library's documented front door)."""

from __future__ import annotations

import ast
import functools
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "spatialmix_cli").glob("*/__init__.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def imported_names() -> dict[str, set[str]]:
    """module → the names some other file imports from it (``from M import a``, and the lazy tables'
    ``{".m": ("a", ...)}`` of a package ``__init__``); this test file does not count."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in [*(ROOT / "spatialmix_cli").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        if path == Path(__file__).resolve():
            continue
        package = module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                full = ".".join([*base, *([node.module] if node.module else [])])
                found[full].update(alias.name for alias in node.names)
            elif isinstance(node, ast.Dict) and all(
                isinstance(k, ast.Constant) and str(k.value).startswith(".") for k in node.keys
            ):
                for key, value in zip(node.keys, node.values, strict=True):
                    names = [e.value for e in getattr(value, "elts", []) if isinstance(e, ast.Constant)]
                    found[".".join([*package, str(key.value)[1:]])].update(names)
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_export_of_a_subpackage_is_imported_somewhere(package: Path) -> None:
    name = module_name(package / "__init__.py")
    exported = set(getattr(importlib.import_module(name), "__all__", ()))
    unused = sorted(exported - imported_names()[name])
    assert not unused, f"{name} exports names nothing imports from it: {unused}"
