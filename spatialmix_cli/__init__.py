"""spatialmix: train, attack, inspect and report on vision models whose spatial mixing is frozen.

Library entry points (the CLI is a thin layer over these)::

    from spatialmix_cli import create_model, list_models, load_checkpoint, train, TrainConfig
    from spatialmix_cli import adapt_model   # learn modes and filter banks for any nn.Module
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:  # the real imports, for type checkers; at run time each is read on first use
    from .checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
    from .config import TrainConfig
    from .errors import CheckpointError, ConfigError, DataError, SpatialmixError
    from .evaluation import evaluate
    from .layers import param_report
    from .models import adapt_model, create_model, list_models
    from .recipes import load_recipe
    from .training import TrainResult, train

__getattr__ = lazy_exports(
    __name__,
    {
        "Checkpoint": ".checkpoint",
        "load_checkpoint": ".checkpoint",
        "load_model": ".checkpoint",
        "save_checkpoint": ".checkpoint",
        "TrainConfig": ".config",
        "CheckpointError": ".errors",
        "ConfigError": ".errors",
        "DataError": ".errors",
        "SpatialmixError": ".errors",
        "evaluate": ".evaluation",
        "param_report": ".layers",
        "adapt_model": ".models",
        "create_model": ".models",
        "list_models": ".models",
        "load_recipe": ".recipes",
        "TrainResult": ".training",
        "train": ".training",
    },
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "SpatialmixError",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "adapt_model",
    "create_model",
    "evaluate",
    "list_models",
    "load_checkpoint",
    "load_model",
    "load_recipe",
    "param_report",
    "save_checkpoint",
    "train",
]
