"""House rules a reviewer would otherwise check by hand (docs/architecture.md): every function fits on a
screen (≤ 60 lines, signature and docstring included) unless a ``# long:`` comment in it says why; the
trainer's modules are held to more: every function ≤ 40 lines as ``ruff format`` writes it, and no
``# long:`` or ``# fmt: skip`` to opt out; and no module imports another module's private (underscore)
name — a private name is free to change."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "spatialmix_cli"
MAX_LINES = 60
# The trainer (docs/architecture.md, "Data flow of one spatialmix train run"): parts that each read top to bottom.
TRAINER_MODULES = ("training.py", "training_state.py", "evaluation.py", "precise_bn.py", "distributed.py")
TRAINER = [PACKAGE / name for name in (*TRAINER_MODULES, "tasks.py", "data/prepare.py")]
TRAINER_MAX_LINES = 40
EXEMPTIONS = ("# long:", "# fmt: skip")


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _long_functions(
    path: Path, root: Path = REPO, *, text: str | None = None, limit: int = MAX_LINES, exempt: bool = True
) -> list[str]:
    """Functions of ``path`` (or of ``text``, its source as given) longer than ``limit`` lines, signature and
    docstring included; with ``exempt``, a ``# long:`` comment in a function lets it be longer."""
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            body = lines[node.lineno - 1 : node.end_lineno]
            if length > limit and not (exempt and any("# long:" in line for line in body)):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}() is {length} lines")
    return found


def _ruff_formatted(path: Path) -> str:
    """``path`` as ``ruff format`` writes it (the project's settings; the file itself is not changed)."""
    pytest.importorskip("ruff")  # a test dependency (pyproject's ``test`` extra)
    config = REPO / "pyproject.toml"
    cmd = [
        sys.executable,
        "-m",
        "ruff",
        "format",
        "--config",
        str(config),
        "--stdin-filename",
        str(path),
        "-",
    ]
    done = subprocess.run(cmd, input=path.read_text(), capture_output=True, text=True, cwd=REPO, check=True)
    return done.stdout


def _trainer_problems(path: Path, root: Path = REPO) -> list[str]:
    """What keeps a trainer module from reading in parts: an opt-out comment (``# long:``, ``# fmt: skip``)
    anywhere in it, or a function over :data:`TRAINER_MAX_LINES` lines once ``ruff format`` has run."""
    lines = path.read_text().splitlines()
    found = [
        f"{path.relative_to(root)}:{number} has {mark!r}"
        for number, line in enumerate(lines, 1)
        for mark in EXEMPTIONS
        if mark in line
    ]
    formatted = _ruff_formatted(path)
    return found + _long_functions(path, root, text=formatted, limit=TRAINER_MAX_LINES, exempt=False)


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


def test_the_trainer_check_can_fail(tmp_path: Path) -> None:
    """The trainer's rule finds a function of 41 lines, one that only ``ruff format`` makes longer than 40
    (the length counted is the formatted one), and either opt-out comment, even on a short function."""
    sample = tmp_path / "sample.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(TRAINER_MAX_LINES))
    sample.write_text(f"def big():\n{body}\n")
    assert _trainer_problems(sample, tmp_path) == ["sample.py:1 big() is 41 lines"]
    short = "\n".join(f"    x{i} = {i}" for i in range(TRAINER_MAX_LINES - 2))
    sample.write_text(f"def big():\n{short}\n    return [{', '.join(['x0'] * 40)}]\n")
    assert _long_functions(sample, tmp_path, limit=TRAINER_MAX_LINES) == []  # 40 lines as written
    assert _trainer_problems(sample, tmp_path) == [
        "sample.py:1 big() is 81 lines"
    ]  # the list, one item a line
    sample.write_text("def short():  # long: says why\n    return [1,\n            2]  # fmt: skip\n")
    assert _trainer_problems(sample, tmp_path) == [
        "sample.py:1 has '# long:'",
        "sample.py:3 has '# fmt: skip'",
    ]


@pytest.mark.parametrize("path", _sources(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_fit_on_a_screen(path: Path) -> None:
    assert _long_functions(path) == []


@pytest.mark.parametrize("path", TRAINER, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_trainer_reads_in_parts(path: Path) -> None:
    """Each function of the trainer's modules ≤ 40 lines after ``ruff format``, none of them exempted."""
    assert _trainer_problems(path) == []


def test_no_private_name_crosses_a_module() -> None:
    assert [hit for path in _sources(PACKAGE, REPO / "tests") for hit in _private_imports(path)] == []
