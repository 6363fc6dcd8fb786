"""Package attributes imported on first use (PEP 562), so that ``import spatialmix_cli`` and ``--help``
do not pay for torch: a package's ``__init__`` names where each of its exports lives, and the module is
imported only when one of them is read."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str], first: Sequence[str] = ()) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps each export to its (relative) module;
    ``first`` are modules imported before any export is read (the model registry's entry points)."""

    def getattr_(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        for module in first:
            importlib.import_module(module, package)
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # read once: later reads skip __getattr__
        return value

    return getattr_
