"""Building blocks: tagged convolutions, filter banks, learn modes, input normalisation."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the real imports, for type checkers; at run time each is read on first use
    from .filter_banks import (
        FILTER_BANKS,
        BankDef,
        BankParam,
        BankSpec,
        bank_spec,
        format_bank,
        init_filter_banks,
        make_filter_bank,
        parse_bank,
        with_smooth_sigma,
    )
    from .learn import LEARN_MODES, apply_learn_mode, configure_spatial_mixing, layer_counts, param_report
    from .normalize import Normalize
    from .roles import filter_bank_layers, tag_roles
    from .separable import ChannelConv2d, DenseConv2d, DepthwiseConv2d, PatchConv2d, SeparableConv2d

__getattr__ = lazy_exports(
    __name__,
    {
        "FILTER_BANKS": ".filter_banks",
        "BankDef": ".filter_banks",
        "BankParam": ".filter_banks",
        "BankSpec": ".filter_banks",
        "bank_spec": ".filter_banks",
        "format_bank": ".filter_banks",
        "init_filter_banks": ".filter_banks",
        "make_filter_bank": ".filter_banks",
        "parse_bank": ".filter_banks",
        "with_smooth_sigma": ".filter_banks",
        "LEARN_MODES": ".learn",
        "apply_learn_mode": ".learn",
        "configure_spatial_mixing": ".learn",
        "layer_counts": ".learn",
        "param_report": ".learn",
        "filter_bank_layers": ".roles",
        "tag_roles": ".roles",
        "Normalize": ".normalize",
        "ChannelConv2d": ".separable",
        "DenseConv2d": ".separable",
        "DepthwiseConv2d": ".separable",
        "PatchConv2d": ".separable",
        "SeparableConv2d": ".separable",
    },
)

__all__ = [
    "FILTER_BANKS",
    "LEARN_MODES",
    "BankDef",
    "BankParam",
    "BankSpec",
    "ChannelConv2d",
    "DenseConv2d",
    "DepthwiseConv2d",
    "Normalize",
    "PatchConv2d",
    "SeparableConv2d",
    "apply_learn_mode",
    "bank_spec",
    "configure_spatial_mixing",
    "format_bank",
    "init_filter_banks",
    "filter_bank_layers",
    "layer_counts",
    "make_filter_bank",
    "param_report",
    "parse_bank",
    "tag_roles",
    "with_smooth_sigma",
]
