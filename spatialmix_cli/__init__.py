"""spatialmix: train, attack, inspect and report on vision models whose spatial mixing is frozen.

Library entry points (the CLI is a thin layer over these)::

    from spatialmix_cli import create_model, list_models, load_checkpoint, train, TrainConfig
"""

__version__ = "0.1.0"

from .checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, SpatialmixError  # noqa: E402
from .evaluation import evaluate  # noqa: E402
from .layers import param_report  # noqa: E402
from .models import create_model, list_models  # noqa: E402
from .recipes import load_recipe  # noqa: E402
from .training import TrainResult, train  # noqa: E402

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "SpatialmixError",
    "TrainConfig",
    "TrainResult",
    "__version__",
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
