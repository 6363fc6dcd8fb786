"""Building blocks: tagged convolutions, filter banks, learn modes, input normalisation."""

from .filter_banks import FILTER_BANKS, init_filter_banks, make_filter_bank
from .learn import LEARN_MODES, apply_learn_mode, configure_spatial_mixing, param_report
from .normalize import Normalize
from .separable import ChannelConv2d, DenseConv2d, DepthwiseConv2d, PatchConv2d, SeparableConv2d

__all__ = [
    "FILTER_BANKS",
    "LEARN_MODES",
    "ChannelConv2d",
    "DenseConv2d",
    "DepthwiseConv2d",
    "Normalize",
    "PatchConv2d",
    "SeparableConv2d",
    "apply_learn_mode",
    "configure_spatial_mixing",
    "init_filter_banks",
    "make_filter_bank",
    "param_report",
]
