"""`--help` answers fast and reads well: no torch (nor the other heavy libraries) imported, options in
their panels, examples, and nothing cut short when stdout is not a terminal."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["train", "attack", "unshuffle", "eval", "info", "spectrum", "report", "bench", "run"]
HEAVY = ("torch", "torchvision", "torchattacks", "matplotlib", "numpy", "scipy")

# Runs `spatialmix ARGS --help` in a fresh interpreter and prints, after the help, one JSON line: the
# heavy modules that were imported (an atexit hook: main() ends with sys.exit).
CHILD = """
import atexit, json, sys
atexit.register(lambda: print("\\n" + json.dumps(sorted(m for m in {heavy} if m in sys.modules))))
from spatialmix_cli.cli.app import main
sys.argv = ["spatialmix", *{args!r}, "--help"]
main()
"""


@functools.cache
def run_help(*args: str) -> tuple[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH", "LINES")}
    env["PYTHONPATH"] = str(ROOT)
    code = CHILD.format(heavy=HEAVY, args=list(args))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    return text, json.loads(last)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_heavy_library(command: str | None) -> None:
    text, imported = run_help(*([command] if command else []))
    assert "Usage:" in text
    assert imported == [], f"--help imported {imported}"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_has_examples_and_no_cut_lines(command: str | None) -> None:
    text, _ = run_help(*([command] if command else []))
    assert "Examples:" in text
    example = f"spatialmix {command} " if command else "spatialmix "
    assert any(line.strip().startswith(example) for line in text.splitlines()), "no example of the command"
    assert "…" not in text, "a line of help was cut short"
    assert max(len(line) for line in text.splitlines()) > 80, "help outside a terminal is wider than 80"


@pytest.mark.parametrize(
    ("command", "panels"),
    [
        ("train", ["Runs", "Model", "Data", "Optimisation", "Runtime", "Output"]),
        ("unshuffle", ["Runs", "Model", "Data", "Optimisation", "Runtime", "Output"]),
        ("attack", ["Runs", "Data", "Attack", "Runtime", "Output"]),
        ("eval", ["Data", "Runtime", "Output"]),
        ("info", ["Output"]),
        ("spectrum", ["Model", "Runtime", "Spectrum", "Output"]),
        ("report", ["Output"]),
        ("bench", ["Model", "Runtime", "Output"]),
        ("run", ["Output"]),
    ],
)
def test_help_groups_options_in_panels_in_order(command: str, panels: list[str]) -> None:
    text, _ = run_help(command)
    titles = [line.split("─ ", 1)[1].split(" ─")[0] for line in text.splitlines() if line.startswith("╭─ ")]
    assert [t for t in titles if t not in ("Arguments", "Options")] == panels


def test_config_options_show_their_defaults_in_their_panel() -> None:
    text, _ = run_help("train")
    optimisation = text.split("─ Optimisation ")[1].split("╰")[0]
    assert "--epochs" in optimisation and "[default: 10]" in optimisation
    assert "--lr" in optimisation and "--arch" not in optimisation
    model = text.split("─ Model ")[1].split("╰")[0]
    assert "--arch" in model and "[default: convmixer]" in model


def test_attack_help_says_pgd_is_the_papers_by_default() -> None:
    """`spatialmix attack --method pgd --steps 2` is the paper's PGD-2: the help says so, and names Madry's."""
    text, _ = run_help("attack")
    variant = text.split("--pgd-variant")[1].split("--alpha")[0]
    assert "[default: paper]" in variant and "α = ε" in variant and "Madry" in variant


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_names_values_not_python_types(command: str | None) -> None:
    """Values are named (INT, PATH, KEY=VALUE; a flag bare), defaults are values ([default: 10])."""
    text, _ = run_help(*([command] if command else []))
    assert not re.search(r"<(bool|str|int|float|path|list\[|Path)", text), "a Python type in --help"
    assert "[default: (" not in text
    if command == "train":
        assert re.search(r"--epochs\s+INT\s", text) and re.search(r"--batch-size\s+-b\s+INT", text)
        assert re.search(r"--set\s+KEY=VALUE", text) and re.search(r"--kernel\s+INT", text)


@pytest.mark.parametrize(("command", "name"), [("attack", "TARGETS"), ("eval", "TARGETS"), ("info", "TARGETS"),
                                                ("spectrum", "TARGET"), ("report", "RUNS"), ("run", "RECIPE")])  # fmt: skip
def test_positional_arguments_have_one_spelling_and_writers_take_o(command: str, name: str) -> None:
    text, _ = run_help(command)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.split()[-1].strip("[]{}.") == name
    if re.search(r"^│ --out\b", text, re.MULTILINE):  # an option of its own
        assert re.search(r"--out\s+-o\s", text), f"{command} writes with --out but has no -o"
