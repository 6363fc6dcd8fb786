"""spatialmix: train, attack, inspect and report on vision models whose spatial mixing is frozen.

Library entry points (the CLI is a thin layer over these)::

    from spatialmix_cli import create_model, list_models, load_checkpoint, train, TrainConfig
    from spatialmix_cli import adapt_model   # learn modes and filter banks for any nn.Module
"""

__version__ = "0.1.0"

from .lazy import lazy_exports

__getattr__, _exports = lazy_exports(
    __name__,
    {
        ".store.checkpoint": ("Checkpoint", "load_checkpoint", "load_model", "save_checkpoint"),
        ".config.train": ("TrainConfig",),
        ".errors": ("CheckpointError", "ConfigError", "DataError", "SpatialmixError"),
        ".training.evaluate": ("evaluate",),
        ".layers": ("param_report",),
        ".models": ("adapt_model", "create_model", "list_models"),
        ".config.recipes": ("load_recipe",),
        ".training.loop": ("TrainResult", "train"),
    },
)
__all__ = ["__version__", *_exports]
