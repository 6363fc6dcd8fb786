"""House rules a reviewer would otherwise check by hand (docs/architecture.md): every function fits on a
screen (≤ 60 lines, signature and docstring included) unless a ``# long:`` comment in it says why, and no
module imports another module's private (underscore) name — a private name is free to change."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "spatialmix_cli"
MAX_LINES = 60


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _long_functions(path: Path, root: Path = REPO) -> list[str]:
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            body = lines[node.lineno - 1 : node.end_lineno]
            if length > MAX_LINES and not any("# long:" in line for line in body):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}() is {length} lines")
    return found


def _private_imports(path: Path, root: Path = REPO) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    module = "." * node.level + (node.module or "")
                    found.append(f"{path.relative_to(root)}:{node.lineno} imports {alias.name} from {module}")
    return found


def test_checks_can_fail(tmp_path: Path) -> None:
    """The two checks find what they look for (so an empty list below means something)."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"from .other import _hidden\n\n\ndef big():\n{body}\n")
    assert _long_functions(sample, tmp_path) == ["sample.py:4 big() is 61 lines"]
    assert _private_imports(sample, tmp_path) == ["sample.py:1 imports _hidden from .other"]
    sample.write_text(f"def big():  # long: a table of constants\n{body}\n")
    assert _long_functions(sample, tmp_path) == []


@pytest.mark.parametrize("path", _sources(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_fit_on_a_screen(path: Path) -> None:
    assert _long_functions(path) == []


def test_no_private_name_crosses_a_module() -> None:
    assert [hit for path in _sources(PACKAGE, REPO / "tests") for hit in _private_imports(path)] == []
