"""Upper limits on how much *work* one request may ask for (iterations, draws, steps), besides the memory
check of :mod:`.memory`: a value past them is a typo or a hostile file, and would otherwise run for days
with no progress a user could see. Each is far past anything the paper or a real study uses.

Also the :class:`Bound` a config key declares its range with (``keyspec.key(bounds=...)``), and the
bounds shared with other commands (seeds, Gaussian σ)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
MAX_STEPS = 10_000  # PGD steps of an attack or a masking check (the paper: 2; AutoAttack's APGD: 100)
MAX_ADV_STEPS = 1_000  # PGD steps per training batch (adversarial training)
MAX_DRAWS = 10_000  # fresh random banks per N (spectrum --draws, report --draws)
MAX_MULTIPLIER = 4_096  # depthwise multiplier of a fresh bank
DEFAULT_PAD = 512  # FFT size of a spectrum (spectra.envelope checks it against its own MAX_PAD)
DEFAULT_THRESHOLD = 0.5  # a spectrum's peak-relative coverage counts frequencies at this share of the peak
# A spectrum's coverage counts frequencies where a unit-energy filter's |H| reaches this multiple of a flat
# spectrum's (|H| = 1): +6 dB. Measured on random k = 5 banks at pad 512 (docs/design.md), it spreads
# N = 1 … 256 over 0.02 … 0.97 and separates N = 64 (0.61) from N = 256.
DEFAULT_LEVEL = 2.0
MAX_BENCH_ITERS = 100_000  # timed (or warm-up) iterations of `spatialmix bench`
MAX_BENCH_BATCH = 65_536  # images per step of `spatialmix bench`
SIGMA_RANGE = (0.01, 64.0)  # Gaussian std in filter taps: below, smoothing is the identity; above, a box
MAX_IMAGE_SIZE = 4096  # pixels a side: a resize beyond it is a typo or a hostile file, whatever the memory
MAX_CHANNELS = 1 << 10  # input channels a model may take (a dataset's, or a checkpoint's metadata)
MAX_CLASSES = 1 << 20  # classes a model's head may have
MIN_IMAGE_SIZE = 4  # pixels a side: torchvision's antialiased resize fails below 2, and 2-3 px hold no space
# `-` (checkpoints from stdin, as in `train --json | spatialmix eval -`): lines read, blank ones included (so an
# endless stream stops too), and bytes in one line: a path (Linux's PATH_MAX: 4,096) or a run record (~600)
MAX_STDIN_LINES = 10_000
MAX_STDIN_LINE_BYTES = 1 << 14
_WHY = "this limit keeps one request from running for days"


@dataclass(frozen=True)
class Bound:
    """A limit on one value: ``ok(value)`` or the error ``<label> must be <must>``, where ``must`` is a
    template with ``{value}`` (e.g. ``"> 0, got {value}"``); ``high``: the largest value it allows, where
    it has one (what a model's size check and a checkpoint's metadata check read)."""

    ok: Callable[[Any], bool]
    must: str
    high: float | None = None

    def check(self, label: str, value: Any) -> None:
        if not self.ok(value):
            raise ConfigError(f"{label} must be {self.must.format(value=value)}")


def above(low: float) -> Bound:
    return Bound(lambda v: v > low, f"> {low}, got {{value}}")


def at_least(low: float, unit: str = "") -> Bound:
    """``>= low``; with a ``unit``, worded "at least <low> <unit>"."""
    text = f"at least {low} {unit}" if unit else f">= {low}"
    return Bound(lambda v: v >= low, f"{text}, got {{value}}")


def at_most(high: float, unit: str) -> Bound:
    return Bound(lambda v: v <= high, f"at most {high} {unit}, got {{value}}", high)


def within(low: float, high: float, *, high_open: bool = False, note: str = "") -> Bound:
    """``low <= v <= high`` (``high_open``: ``< high``), worded "in [low, high]" plus ``note``."""
    if high_open:
        return Bound(lambda v: low <= v < high, f"in [{low}, {high}){note}, got {{value}}")
    return Bound(lambda v: low <= v <= high, f"in [{low}, {high}]{note}, got {{value}}", high)


def work_limit(limit: int | float) -> Bound:
    """At most ``limit`` iterations / steps / draws (see the module docstring)."""
    return Bound(lambda v: v <= limit, f"at most {limit:,}, got {{value:,}} (a typo? {_WHY})", limit)


def matches(pattern: str, must: str) -> Bound:
    return Bound(lambda v: re.fullmatch(pattern, v) is not None, must)


DEVICE = matches(r"auto|cpu|cuda(:\d+)?|mps", "auto, cpu, cuda or cuda:N, got '{value}'")
SEED = Bound(lambda v: 0 <= v <= SEED_MAX, "in [0, 2**63), got {value}")
SIGMA = Bound(
    lambda v: SIGMA_RANGE[0] <= v <= SIGMA_RANGE[1],
    f"in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}] filter taps, got {{value:g}} (below, the Gaussian is a "
    "delta; above, it is flat over any kernel)",
)


def check_at_most(what: str, value: int | float, limit: int | float) -> None:
    work_limit(limit).check(what, value)


def check_seed(what: str, value: int) -> None:
    SEED.check(what, value)


def check_sigma(what: str, sigma: float) -> None:
    SIGMA.check(what, sigma)
