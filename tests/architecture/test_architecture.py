"""House rules a reviewer would otherwise check by hand (docs/architecture.md): ``ruff format`` writes every
line of the library (no ``# fmt: skip``, no ``# long:`` to opt out of a rule); every function fits on a
screen (≤ 60 lines, signature and docstring included); the trainer's modules are held to more: every
function ≤ 40 lines as ``ruff format`` writes it; and no module imports another module's private
(underscore) name — a private name is free to change."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "spatialmix_cli"
MAX_LINES = 60
# The trainer (docs/architecture.md, "Data flow of one spatialmix train run"): parts that each read top to bottom.
TRAINER_MODULES = (
    "loop.py",
    "state.py",
    "evaluate.py",
    "precise_bn.py",
    "distributed.py",
    "tasks.py",
    "prepare.py",
)
TRAINER = [PACKAGE / "training" / name for name in TRAINER_MODULES]
TRAINER_MAX_LINES = 40
EXEMPTIONS = ("# long:", "# fmt: skip")  # opt-outs no file of the library may use


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _long_functions(
    path: Path, root: Path = REPO, *, text: str | None = None, limit: int = MAX_LINES
) -> list[str]:
    """Functions of ``path`` (or of ``text``, its source as given) longer than ``limit`` lines, signature and
    docstring included."""
    text = path.read_text() if text is None else text
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            if length > limit:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}() is {length} lines")
    return found


def _exemptions(path: Path, root: Path = REPO) -> list[str]:
    """The lines of ``path`` that opt out of a rule: a ``# fmt: skip`` (``ruff format`` leaves the statement
    as typed, hiding its length) or a ``# long:`` (an escape from the function-length rule)."""
    return [
        f"{path.relative_to(root)}:{number} has {mark!r}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for mark in EXEMPTIONS
        if mark in line
    ]


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
    """What keeps a trainer module from reading in parts: a function over :data:`TRAINER_MAX_LINES` lines
    once ``ruff format`` has run (no opt-out comment can hide one: :func:`_exemptions` holds for every file)."""
    return _long_functions(path, root, text=_ruff_formatted(path), limit=TRAINER_MAX_LINES)


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
    """The checks find what they look for (so an empty list below means something); a ``# long:`` comment
    does not let a function be longer, and either opt-out comment is found."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"from .other import _hidden\n\n\ndef big():\n{body}\n")
    assert _long_functions(sample, tmp_path) == ["sample.py:4 big() is 61 lines"]
    assert _private_imports(sample, tmp_path) == ["sample.py:1 imports _hidden from .other"]
    assert _exemptions(sample, tmp_path) == []
    sample.write_text(f"def big():  # long: a table of constants\n{body}\n")
    assert _long_functions(sample, tmp_path) == ["sample.py:1 big() is 61 lines"]
    sample.write_text("def short():  # long: says why\n    return [1,\n            2]  # fmt: skip\n")
    assert _exemptions(sample, tmp_path) == ["sample.py:1 has '# long:'", "sample.py:3 has '# fmt: skip'"]


def test_the_trainer_check_can_fail(tmp_path: Path) -> None:
    """The trainer's rule finds a function of 41 lines, and one that only ``ruff format`` makes longer than 40
    (the length counted is the formatted one)."""
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


@pytest.mark.parametrize("path", _sources(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_ruff_format_writes_every_line(path: Path) -> None:
    """No ``# fmt: skip`` or ``# long:`` in the library: the lengths the rules below count are ruff's."""
    assert _exemptions(path) == []


@pytest.mark.parametrize("path", _sources(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_fit_on_a_screen(path: Path) -> None:
    assert _long_functions(path) == []


@pytest.mark.parametrize("path", TRAINER, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_trainer_reads_in_parts(path: Path) -> None:
    """Each function of the trainer's modules ≤ 40 lines after ``ruff format``."""
    assert _trainer_problems(path) == []


def test_no_private_name_crosses_a_module() -> None:
    assert [hit for path in _sources(PACKAGE, REPO / "tests") for hit in _private_imports(path)] == []


# --- the layers (docs/architecture.md) ------------------------------------------------------------------------
# Imports run one way: a module may import its own layer or any layer listed before it. The root modules are
# the base every layer may use; ``__main__`` sits above the CLI. Peers in one layer may import each other as
# long as no cycle forms (checked separately).
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors",
        "lazy",
        "seeding",
        "safefiles",
        "",
    ),  # the package root: "" is its __init__ (lazy exports only)
    ("config",),
    ("data", "layers", "models"),
    ("store",),
    ("attacks", "training", "analysis"),
    ("commands",),
    ("cli",),
    ("__main__",),
)
MAX_ROOT_MODULES = 6
MAX_LOCAL_IMPORTS = 15  # function-local imports outside cli/, each with a one-line reason


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"module '{module}' is in no layer: add its folder to LAYERS")


def _is_local(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside a function body."""
    return {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    }


def import_graph(package: Path) -> dict[str, list[tuple[str, int, bool]]]:
    """``{module: [(imported module, line, function-local?), ...]}`` for the package's own modules, every
    import counted (module level, function-local and ``TYPE_CHECKING`` alike); ``module`` is dotted from
    the package (``training.loop``; ``""`` is the package's ``__init__``)."""
    paths = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, list[tuple[str, int, bool]]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text())
        local = _is_local(tree)
        edges = graph.setdefault(name, [])
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - (node.level - 1)] + ([node.module] if node.module else [])
                targets = [".".join(base + [alias.name]) for alias in node.names]
                targets = [t if t.strip(".") in paths else ".".join(base) for t in targets]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                absolute = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                )
                own = package.name + "."
                targets = [t[len(own) :] for t in absolute if t.startswith(own)]
            else:
                continue
            for target in targets:
                target = target.strip(".")
                while target not in paths and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name and target in paths:
                    edges.append((target, node.lineno, id(node) in local))
    return graph


def cycles(graph: dict[str, list[tuple[str, int, bool]]]) -> list[list[str]]:
    """The import cycles: each strongly connected set of two or more modules, sorted (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target, _, _ in graph.get(module, []):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def upward_imports(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    """Imports against the direction of :data:`LAYERS`."""
    return sorted(
        {
            f"{module or '__init__'}:{line} imports {target} (layer {_layer(target)} > {_layer(module)})"
            for module, edges in graph.items()
            for target, line, _ in edges
            if _layer(target) > _layer(module)
        }
    )


def local_imports(package: Path) -> tuple[list[str], list[str]]:
    """Function-local imports outside ``cli/``: all of them, and those with no reason (a comment on the
    import's first line or on the line above it)."""
    found, unexplained = [], []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] == "cli":
            continue
        text = path.read_text()
        tree, lines = ast.parse(text), text.splitlines()
        local = _is_local(tree)
        for node in ast.walk(tree):
            if id(node) in local:
                where = f"{path.relative_to(package)}:{node.lineno}"
                found.append(where)
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                if "#" not in lines[node.lineno - 1] and not above.startswith("#"):
                    unexplained.append(where)
    return found, unexplained


def test_the_import_checks_can_fail(tmp_path: Path) -> None:
    """A planted cycle and a planted upward import are found; a clean package passes."""
    package = tmp_path / "pkg"
    for folder in ("config", "models", "training"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "models" / "a.py").write_text("from ..config import keys\n")
    (package / "config" / "keys.py").write_text("X = 1\n")
    assert cycles(import_graph(package)) == [] and upward_imports(import_graph(package)) == []
    (package / "config" / "keys.py").write_text("def f():\n    from ..models.a import g  # planted\n")
    graph = import_graph(package)
    assert upward_imports(graph) == ["config.keys:2 imports models.a (layer 2 > 1)"]
    assert cycles(graph) == [["config.keys", "models.a"]]
    (package / "config" / "keys.py").write_text("X = 1\n")
    (package / "training" / "b.py").write_text("from . import c\n")
    (package / "training" / "c.py").write_text("import pkg.training.b\n")
    assert cycles(import_graph(package)) == [["training.b", "training.c"]]
    found, unexplained = local_imports(package)
    assert found == [] and unexplained == []
    (package / "training" / "c.py").write_text(
        "def f():\n    import os\n\n\ndef g():\n    # why\n    import re\n"
    )
    assert local_imports(package) == (["training/c.py:2", "training/c.py:7"], ["training/c.py:2"])


def test_no_import_cycles() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_imports_run_one_way() -> None:
    """cli → commands → attacks / analysis / training → store → models / layers / data → config → the root."""
    assert upward_imports(import_graph(PACKAGE)) == []


def test_the_package_root_stays_small() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_function_local_imports_are_few_and_explained() -> None:
    found, unexplained = local_imports(PACKAGE)
    assert unexplained == []
    assert len(found) <= MAX_LOCAL_IMPORTS, found
