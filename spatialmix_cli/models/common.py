"""The arguments every model takes besides its architecture, declared once: learn mode, filter-bank spec,
seed and input normalisation. A constructor declares only its architecture and a ``mixing:
SpatialMixingArgs``; it calls :meth:`SpatialMixingArgs.normalize` for its first module and
:meth:`SpatialMixingArgs.finish` last. ``create_model`` takes these arguments flat (``learn=``,
``filters=``, ...) and :func:`split_mixing_args` gathers them."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..config.banks import format_bank, with_smooth_sigma
from ..layers import Normalize, configure_spatial_mixing


@dataclass(frozen=True)
class SpatialMixingArgs:
    """``learn``: full | chans | space; ``filters``: a filter-bank spec (``random``, ``smooth:1.5``, see
    :mod:`spatialmix_cli.layers.filter_banks`); ``seed`` of the banks; ``mean``/``std`` normalise inside
    the model (images come in [0, 1]; None: 0 and 1 for every channel)."""

    learn: str = "full"
    filters: str = "random"
    seed: int = 0
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    def normalize(self, in_chans: int) -> Normalize:
        return Normalize(self.mean or [0.0] * in_chans, self.std or [1.0] * in_chans)

    def finish(self, model: nn.Module) -> None:
        """Initialise the model's depthwise banks and apply the learn mode (the constructor's last step)."""
        configure_spatial_mixing(model, learn=self.learn, filters=self.filters, seed=self.seed)


DEFAULT_MIXING = SpatialMixingArgs()
MIXING_FIELDS = tuple(f.name for f in dataclasses.fields(SpatialMixingArgs))
# Legacy: checkpoints written before bank specs hold ``smooth_sigma`` among their model kwargs (the config
# passes ``filters: smooth:0.5`` now); split_mixing_args folds it into the filters spec so they still load.
LEGACY_ARGS: dict[str, Any] = {"smooth_sigma": float}


def mixing_arg_hints() -> dict[str, Any]:
    """Type of each flat argument, in the order error messages list them (learn, filters, smooth_sigma,
    seed, mean, std: the order of the constructors' signatures before this module)."""
    hints = typing.get_type_hints(SpatialMixingArgs)
    order = ("learn", "filters", *LEGACY_ARGS, "seed", "mean", "std")
    return {name: hints.get(name, LEGACY_ARGS.get(name)) for name in order}


def split_mixing_args(kwargs: dict[str, Any]) -> tuple[dict[str, Any], SpatialMixingArgs]:
    """The architecture's kwargs and the shared ones, from flat ``create_model`` kwargs (already checked by
    ``check_kwargs``). The one place the legacy ``smooth_sigma`` meets the spec: ``filters="smooth",
    smooth_sigma=2.0`` is ``filters="smooth:2"``; with any other bank it is ignored, as it always was."""
    arch = dict(kwargs)
    shared = {name: arch.pop(name) for name in MIXING_FIELDS if name in arch}
    smooth_sigma = arch.pop("smooth_sigma", None)
    if "filters" in shared or smooth_sigma is not None:
        shared["filters"] = format_bank(with_smooth_sigma(shared.get("filters", "random"), smooth_sigma))
    return arch, SpatialMixingArgs(**shared)
