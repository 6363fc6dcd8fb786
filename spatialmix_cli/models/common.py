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

from ..config.banks import format_bank
from ..layers import Normalize, configure_spatial_mixing


@dataclass(frozen=True)
class SpatialMixingArgs:
    """``learn``: head | norm | chans | full | space; ``filters``: a filter-bank spec (``random``, ``smooth:1.5``, see
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


def mixing_arg_hints() -> dict[str, Any]:
    """Type of each flat argument, in the order error messages list them (the fields' order)."""
    hints = typing.get_type_hints(SpatialMixingArgs)
    return {name: hints[name] for name in MIXING_FIELDS}


def split_mixing_args(kwargs: dict[str, Any]) -> tuple[dict[str, Any], SpatialMixingArgs]:
    """The architecture's kwargs and the shared ones, from flat ``create_model`` kwargs (already checked by
    ``check_kwargs``); the filters spec in its canonical form (``smooth:1`` is ``smooth``)."""
    arch = dict(kwargs)
    shared = {name: arch.pop(name) for name in MIXING_FIELDS if name in arch}
    if "filters" in shared:
        shared["filters"] = format_bank(shared["filters"])
    return arch, SpatialMixingArgs(**shared)
