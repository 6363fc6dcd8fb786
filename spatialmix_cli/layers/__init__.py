"""Building blocks: tagged convolutions, filter banks, learn modes, input normalisation."""

from ..lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        ".filter_banks": ("make_filter_bank",),
        ".learn": ("LEARN_MODES", "configure_spatial_mixing", "layer_counts", "param_report"),
        ".normalize": ("Normalize",),
        ".separable": ("ChannelConv2d", "DenseConv2d", "DepthwiseConv2d", "PatchConv2d", "SeparableConv2d"),
    },
)
