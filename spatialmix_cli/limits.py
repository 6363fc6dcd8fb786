"""Upper limits on how much *work* one request may ask for (iterations, draws, steps), besides the memory
check of :mod:`.memory`: a value past them is a typo or a hostile file, and would otherwise run for days
with no progress a user could see. Each is far past anything the paper or a real study uses."""

from __future__ import annotations

from .errors import ConfigError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
MAX_STEPS = 10_000  # PGD steps of an attack or a masking check (the paper: 2; AutoAttack's APGD: 100)
MAX_ADV_STEPS = 1_000  # PGD steps per training batch (adversarial training)
MAX_DRAWS = 10_000  # fresh random banks per N (spectrum --draws, report --draws)
MAX_MULTIPLIER = 4_096  # depthwise multiplier of a fresh bank
MAX_BENCH_ITERS = 100_000  # timed (or warm-up) iterations of `spatialmix bench`
MAX_BENCH_BATCH = 65_536  # images per step of `spatialmix bench`
SIGMA_RANGE = (0.01, 64.0)  # Gaussian std in filter taps: below, smoothing is the identity; above, a box
MIN_IMAGE_SIZE = 4  # pixels a side: torchvision's antialiased resize fails below 2, and 2-3 px hold no space


def check_at_most(what: str, value: int | float, limit: int | float) -> None:
    if value > limit:
        raise ConfigError(f"{what} must be at most {limit:,}, got {value:,} (a typo? {_WHY})")


def check_seed(what: str, value: int) -> None:
    if not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{what} must be in [0, 2**63), got {value}")


def check_sigma(what: str, sigma: float) -> None:
    low, high = SIGMA_RANGE
    if not low <= sigma <= high:
        raise ConfigError(
            f"{what} must be in [{low:g}, {high:g}] filter taps, got {sigma:g} (below, the Gaussian is a "
            "delta; above, it is flat over any kernel)"
        )


_WHY = "this limit keeps one request from running for days"
