"""Package attributes imported on first use (PEP 562), so that ``import spatialmix_cli`` and ``--help``
do not pay for torch: a package's ``__init__`` names each of its exports once, under the module it lives in,
and that module is imported only when one of them is read. (Type checkers see these attributes through
``__getattr__``; typed code imports from the defining module.)"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` for ``package`` and its ``__all__``: ``exports`` maps each (relative) module
    to the names it exports."""
    where = {name: module for module, names in exports.items() for name in names}

    def getattr_(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # read once: later reads skip __getattr__
        return value

    return getattr_, sorted(where)
