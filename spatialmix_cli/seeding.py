"""Independent random streams: one seed per purpose, derived from the run's seed and a name.

Habit 6 of the house style: every random tensor comes from its own stream. Seeding two generators with the
same number (the model's init and its frozen filter banks, say) replays one stream twice, so the "independent"
draws are the same numbers. :func:`derive_seed` hashes ``(seed, *purpose)`` with BLAKE2b, so any two distinct
purposes (``("init",)``, ``("filters", "blocks.0.0.fn.0")``, ``("order", epoch)``, ...) get unrelated seeds,
and the same purpose always gets the same seed (exact resume). No torch import: cheap to use anywhere.
"""

from __future__ import annotations

import hashlib

Part = int | str


def derive_seed(seed: int, *purpose: Part) -> int:
    """A 63-bit seed for ``purpose`` under the run's ``seed``. Strings and ints are told apart
    (``("a", 1)`` and ``("a", "1")`` differ), so a purpose can never alias another by formatting."""
    text = "\x1f".join([f"i{int(seed)}", *(f"i{p}" if isinstance(p, int) else f"s{p}" for p in purpose)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
