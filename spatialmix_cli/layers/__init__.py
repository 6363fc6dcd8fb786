"""Building blocks: tagged convolutions, filter banks, learn modes, input normalisation."""

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
from .learn import LEARN_MODES, apply_learn_mode, configure_spatial_mixing, param_report
from .normalize import Normalize
from .separable import ChannelConv2d, DenseConv2d, DepthwiseConv2d, PatchConv2d, SeparableConv2d

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
    "make_filter_bank",
    "param_report",
    "parse_bank",
    "with_smooth_sigma",
]
