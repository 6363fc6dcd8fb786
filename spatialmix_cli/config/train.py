"""The one training configuration: defaults, strict key/type/range checks, and what the model gets.

Precedence (lowest first): these defaults < recipe ``base`` < a sweep point < command-line options.
Unknown keys and wrong types are errors that name the key path (nanoGPT's configurator does the same).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ConfigError, check_choice
from . import coercion
from .banks import BANK_NAMES, DRAWN_BANKS, KEEPS_OWN, check_filters, format_bank
from .coercion import validate_keys
from .keys import (
    DATA,
    EVERYDAY,
    MODEL,
    OPTIMISATION,
    RUNTIME,
    TRAIN,
    UNSHUFFLE,
    choices_help,
    key,
    keys_where,
)
from .limits import (
    DEVICE,
    MAX_ADV_STEPS,
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    SEED,
    above,
    at_least,
    at_most,
    within,
    work_limit,
)
from .names import (
    DATASET_NAMES,
    DATASET_NOTES,
    IMAGE_SIZED_MODELS,
    LEARN_MODES,
    LEARN_NOTES,
    MODEL_NAMES,
    STREAMED,
    TASK_NOTES,
    TASKS,
    canonical_json,
    check_model_args,
    check_model_name,
    is_timm_name,
)
from .safeyaml import parse_yaml


class DatasetShape(Protocol):
    """What a model is told about its dataset (:class:`spatialmix_cli.data.info.DatasetInfo` is one)."""

    @property
    def in_chans(self) -> int: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def mean(self) -> tuple[float, ...]: ...
    @property
    def std(self) -> tuple[float, ...]: ...
    @property
    def image_size(self) -> int: ...


OPTIMIZERS = {"adamw": "", "sgd": "Nesterov momentum"}  # name: what --help says of it
UNSHUFFLE_ARCH = "convmixer_unshuffle"
ADV_METHODS = ("none", "fgsm", "pgd")
SCHEDULES = {"onecycle": "linear up, linear down", "cosine": "warm-up, cosine", "constant": ""}
PRECISE_BN = ("auto", "always", "never")
PRECISE_BN_AUTO_STEPS = 50  # precise_bn auto: runs of fewer optimizer steps recompute (docs/design.md)
LOGGERS = ("tensorboard", "wandb", "mlflow", "none")  # the metric sinks of spatialmix_cli/loggers.py
POSITIVE, NON_NEGATIVE = above(0), at_least(0)


def _canonical_model_args(text: str) -> str:
    """One spelling of timm's arguments: compact JSON with sorted keys (``{"drop_path_rate":0.1}``)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = parse_yaml(text, "model_args")  # YAML flow style: {drop_path_rate: 0.1}
    if not isinstance(value, dict):
        raise ConfigError(f"model_args must be a mapping such as {{drop_path_rate: 0.1}}, got {text!r}")
    return canonical_json(value)


def _model_args_mapping(value: Any, label: str) -> Any:
    """A recipe's mapping of timm's arguments, in its one spelling (text is checked as text)."""
    return canonical_json(check_model_args(value)) if isinstance(value, dict) else value


def _check_model_args(text: str) -> None:
    check_model_args(json.loads(_canonical_model_args(text)))


# Keys that are gone, and where their fact lives: a record or recipe that still has one gets this error.
LEGACY_KEYS = {
    "smooth_sigma": "an older spatialmix wrote it; the smooth bank's σ is part of the spec now: "
    "'filters: smooth' + 'smooth_sigma: 0.5' is 'filters: smooth:0.5' (beside another bank, delete it)"
}


def logger_names(value: str) -> tuple[str, ...]:
    """The metric sinks a ``logger`` value names (a comma list; ``none``: no sink, alone)."""
    names = tuple(part.strip() for part in value.split(","))
    for name in names:
        check_choice("logger", name, LOGGERS)
    if len(set(names)) < len(names) or ("none" in names and len(names) > 1):
        raise ConfigError(f"logger: each sink once, and 'none' alone, got '{value}'")
    return tuple(n for n in names if n != "none")


@dataclass
class TrainConfig:
    """Every key declares its facts once (:func:`keyspec.key`). ``runtime`` keys change how a run executes
    but not what it computes (up to float rounding of kernel choice): a resumed run may change them, and
    `spatialmix report` leaves them out of a run's identity. Everything else (bf16 and cpu_bf16 included:
    bf16 arithmetic changes the numbers; sync_bn: BatchNorm statistics over the global batch) is part of
    what a run is."""

    # --- task --------------------------------------------------------------------------------------
    task: str = key(
        "classify",
        choices=TASKS,
        help=f"{choices_help(TASK_NOTES)}.",
    )
    perm_seed: int = key(
        0, bounds=SEED, flags=UNSHUFFLE, panel=DATA, help="Seed of the fixed pixel permutation (unshuffle)."
    )
    # --- model -------------------------------------------------------------------------------------
    arch: str = key(
        "convmixer",
        check=check_model_name,
        suggest=MODEL_NAMES,
        flags=TRAIN,
        panel=MODEL,
        help="Model name from the registry (see --list-models), or timm:NAME for any timm model.",
    )
    learn: str = key(
        "full",
        choices=LEARN_MODES,
        model="common",
        flags=EVERYDAY,
        panel=MODEL,
        help=f"{choices_help(LEARN_NOTES)}.",
    )
    filters: str = key(
        "random",
        check=check_filters,
        suggest=BANK_NAMES,
        canonical=format_bank,
        model="common",
        flags=EVERYDAY,
        panel=MODEL,
        help=f"Initial depthwise bank: {' | '.join(DRAWN_BANKS)}, with its parameters as a spec: "
        f"smooth:0.5 (σ in taps; plain smooth is σ 1); {KEEPS_OWN} keeps the model's own (timm's weights).",
    )
    pretrained: bool = key(
        False,
        model="timm",
        panel=MODEL,
        help="timm: models only: start from timm's pretrained weights (the HF cache, else downloaded).",
    )
    model_args: str = key(
        "{}",
        check=_check_model_args,
        canonical=_canonical_model_args,
        parse=_model_args_mapping,
        model="timm",
        panel=MODEL,
        help="timm: models only: timm's own create_model arguments, a mapping ({drop_path_rate: 0.1}); "
        "or one at a time with --set model.KEY=VALUE.",
    )
    width: int | None = key(
        None,
        bounds=(POSITIVE, at_most(1 << 16, "channels")),
        model="arch",
        flags=EVERYDAY,
        panel=MODEL,
        label="w",
        help="ConvMixer hidden width / ResNet base width (default: the model's).",
    )
    depth: int | None = key(
        None,
        bounds=(POSITIVE, at_most(4096, "blocks")),
        model="arch",
        flags=EVERYDAY,
        panel=MODEL,
        label="d",
        help="ConvMixer blocks / ResNet layers, 6n+2 or 8n+2 (default: the model's).",
    )
    kernel: int | None = key(
        None,
        bounds=(POSITIVE, at_most(1 << 10, "taps")),
        model="arch",
        flags=EVERYDAY,
        panel=MODEL,
        label="k",
        help="Depthwise kernel size (default: the model's).",
    )
    patch: int | None = key(
        None,
        bounds=(POSITIVE, at_most(1 << 10, "pixels")),
        model="arch",
        flags=EVERYDAY,
        panel=MODEL,
        label="p",
        help="ConvMixer patch size (default: the model's).",
    )
    depth_multiplier: int | None = key(
        None,
        bounds=(POSITIVE, at_most(1 << 10, "filters per channel")),
        model="arch",
        help="Separable ResNet depthwise multiplier (default: 9).",
    )
    activation: str | None = key(
        None, model="arch", help="ConvMixer activation: gelu | relu (default: the model's; 768/32 is relu)."
    )
    # --- data --------------------------------------------------------------------------------------
    dataset: str = key(
        "cifar10",
        choices=DATASET_NAMES,
        flags=EVERYDAY,
        panel=DATA,
        help=f"{choices_help(DATASET_NOTES)}.",
    )
    data_dir: str | None = key(
        None,
        runtime=True,
        flags=EVERYDAY,
        panel=DATA,
        help="Dataset folder (torchvision layout). Default: $SPATIALMIX_DATA, "
        "../shared/datasets, then download.",
    )
    download: bool = key(
        True, runtime=True, flags=UNSHUFFLE, panel=DATA, help="Allow downloading a missing dataset."
    )
    subset: int | None = key(
        None, bounds=POSITIVE, flags=EVERYDAY, panel=DATA, help="Number of training images (default: all)."
    )
    test_subset: int | None = key(None, bounds=POSITIVE, help="Number of test images (default: all).")
    image_size: int | None = key(
        None,
        bounds=(POSITIVE, at_most(MAX_IMAGE_SIZE, "pixels"), at_least(MIN_IMAGE_SIZE, "pixels")),
        flags=EVERYDAY,
        panel=DATA,
        help="Pixels: imagenet / folder crop size (default 224); others resize (default: native).",
    )
    randaugment: int = key(
        0, bounds=NON_NEGATIVE, help="RandAugment operations per image (ImageFolder data only; 0 = off)."
    )
    randaugment_magnitude: int = key(
        9, bounds=(NON_NEGATIVE, within(0, 30)), help="RandAugment magnitude (0-30)."
    )
    mixup: float = key(0.0, bounds=NON_NEGATIVE, help="MixUp alpha (0 = off).")
    cutmix: float = key(
        0.0, bounds=NON_NEGATIVE, help="CutMix alpha (0 = off); with both on, one of the two per batch."
    )
    crop_pad: int | None = key(
        None, bounds=NON_NEGATIVE, help="Random-crop padding in pixels (default: the dataset's; 0: off)."
    )
    hflip: bool | None = key(None, help="Random horizontal flips (default: the dataset's).")
    workers: int | None = key(
        None,
        bounds=NON_NEGATIVE,
        runtime=True,
        help="DataLoader workers, imagenet / folder only (default: min(4, the usable CPU cores)).",
    )
    # --- optimisation ------------------------------------------------------------------------------
    epochs: int = key(10, bounds=POSITIVE, flags=EVERYDAY, panel=OPTIMISATION, help="Training epochs.")
    batch_size: int = key(128, bounds=POSITIVE, flags=EVERYDAY, panel=OPTIMISATION, help="Images per step.")
    optimizer: str = key("adamw", choices=OPTIMIZERS, help=f"{choices_help(OPTIMIZERS)}.")
    lr: float = key(0.01, bounds=POSITIVE, flags=EVERYDAY, panel=OPTIMISATION, help="Peak learning rate.")
    weight_decay: float = key(0.01, bounds=NON_NEGATIVE, help="Weight decay (not on norm layers and biases).")
    momentum: float = key(0.9, bounds=within(0, 1, high_open=True), help="SGD momentum.")
    schedule: str = key(
        "onecycle",
        choices=SCHEDULES,
        help=f"{choices_help(SCHEDULES)}.",
    )
    warmup_epochs: float | None = key(
        None, bounds=NON_NEGATIVE, help="Warm-up epochs (default: 30% of training for onecycle, 0 otherwise)."
    )
    label_smoothing: float = key(0.0, bounds=within(0, 1, high_open=True), help="Label smoothing in [0, 1).")
    grad_clip: float | None = key(None, bounds=POSITIVE, help="Max global gradient norm (default: off).")
    # --- adversarial training (the paper's defence, Sec. 4.3) ---------------------------------------
    adv: str = key(
        "none",
        choices=ADV_METHODS,
        help="Adversarial training: none | fgsm | pgd (examples crafted on the fly; pgd is Madry's: "
        "uniform random start, α = 2.5 adv_eps / adv_steps unless adv_alpha).",
    )
    adv_eps: float = key(
        1 / 255,
        bounds=within(0, 1, note=" (pixel units)"),
        fraction=True,
        help="Adversarial-training ε in pixel units ([0, 1] images), e.g. 1/255.",
    )
    adv_steps: int = key(2, bounds=(at_least(1), work_limit(MAX_ADV_STEPS)), help="PGD steps (adv=pgd).")
    adv_alpha: float | None = key(
        None, bounds=POSITIVE, fraction=True, help="PGD step size (default: 2.5 * adv_eps / adv_steps)."
    )
    # --- evaluation --------------------------------------------------------------------------------
    eval_batch_size: int = key(512, bounds=POSITIVE, runtime=True, help="Images per evaluation step.")
    # evaluation runs in eval mode and draws no random numbers: training is unchanged
    eval_every: int = key(
        1,
        bounds=NON_NEGATIVE,
        runtime=True,
        help="Test-set evaluation every N epochs (0: only after the last).",
    )
    precise_bn: str = key(
        "auto",
        choices=PRECISE_BN,
        help="Recompute BatchNorm's running statistics over training images (weights unchanged) before the "
        f"final test evaluation and save: auto (runs of fewer than {PRECISE_BN_AUTO_STEPS} optimizer steps, "
        "whose running averages have not settled) | always | never.",
    )
    # --- runtime -----------------------------------------------------------------------------------
    seed: int = key(
        0,
        bounds=SEED,
        model="common",
        flags=EVERYDAY,
        panel=RUNTIME,
        help="Seed for model init, filter banks, data order and augmentation.",
    )
    device: str = key(
        "auto",
        bounds=DEVICE,
        runtime=True,
        flags=EVERYDAY,
        panel=RUNTIME,
        help="auto | cpu | cuda | cuda:N.",
    )
    channels_last: bool = key(
        True,
        runtime=True,
        help="Channels-last memory format (same numbers: tests/training/test_fast_paths.py).",
    )
    bf16: bool = key(True, help="bf16 autocast on CUDA.")
    cpu_bf16: bool = key(
        False,
        help="bf16 autocast on a CPU too: needs native bf16 units (AVX512-BF16, AMX, "
        "Arm BF16; refused without them).",
    )
    compile: bool | None = key(
        None, runtime=True, help="torch.compile the training forward (default: auto, long CUDA runs only)."
    )
    sync_bn: bool = key(
        False, help="Distributed (torchrun) GPU runs: BatchNorm statistics over the global batch."
    )
    log_every: int = key(
        20,
        bounds=POSITIVE,
        runtime=True,
        help="Steps between live loss/accuracy updates (each one syncs the device).",
    )
    logger: str = key(
        "tensorboard",
        check=logger_names,
        runtime=True,
        flags=EVERYDAY,
        panel=RUNTIME,
        help="Metric loggers, a comma list: tensorboard (event files in the run directory) | wandb | mlflow | none.",
    )

    # -------------------------------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build and validate a config from a (partial) mapping; errors name ``where.key``."""
        return cls().updated(data, where)

    def updated(self, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """A copy with ``data`` applied on top, checked key by key, then validated as a whole (the model
        itself is built where a run is about to use the config: :func:`spatialmix_cli.models.check_model`)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping of config keys, got {type(data).__name__}")
        # replace(), not asdict(): every field is a scalar, and asdict's deep copies made a recipe of
        # 10^4 points take seconds to list
        cfg = dataclasses.replace(self, **{key: coerce(key, value, where) for key, value in data.items()})
        cfg.validate(where)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def diff(self, other: TrainConfig, ignore: frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
        """Keys whose values differ: ``{key: (self's, other's)}``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}

    def validate(self, where: str = "config") -> None:
        """Check every key (its declared choices and bounds), then the rules across keys. Building the
        model is the models layer's check (:func:`spatialmix_cli.models.check_model`), made for each run
        before it starts."""
        validate_keys(self, where)
        if self.randaugment and self.dataset not in STREAMED:
            raise ConfigError(
                f"{where}.randaugment: RandAugment runs per image on the ImageFolder (imagenet, folder) "
                f"pipeline; '{self.dataset}' is augmented in batches on the device (crop and flip)"
            )
        if self.dataset == "folder" and not self.data_dir:
            raise ConfigError(
                f"{where}.data_dir: dataset 'folder' needs --data-dir DIR (a folder with train/<class>/* and "
                "val/<class>/*)"
            )
        if (self.mixup or self.cutmix) and self.task != "classify":
            raise ConfigError(f"{where}: mixup / cutmix are for task 'classify'")
        if self.warmup_epochs is not None and self.warmup_epochs > self.epochs:
            raise ConfigError(f"{where}.warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})")
        self._validate_task(where)
        self._validate_model_source(where)

    def _validate_model_source(self, where: str) -> None:
        """timm models take timm's arguments (model_args, pretrained); spatialmix's take the size keys."""
        if is_timm_name(self.arch):
            given = [name for name in ARCH_ARGS if getattr(self, name) is not None]
            if given:
                raise ConfigError(
                    f"{where}.{given[0]}: model '{self.arch}' takes its size from its name or from timm's "
                    f"own arguments (--set model.KEY=VALUE), not '{given[0]}'"
                )
        else:
            used = [name for name in TIMM_ARGS if getattr(self, name) != _DEFAULTS[name]]
            if used:
                raise ConfigError(f"{where}.{used[0]}: '{used[0]}' is for timm: models, not '{self.arch}'")

    def _validate_task(self, where: str) -> None:
        unshuffle_arch = self.arch == UNSHUFFLE_ARCH
        if self.task == "unshuffle":
            if not unshuffle_arch:
                raise ConfigError(
                    f"{where}.arch: task 'unshuffle' needs arch '{UNSHUFFLE_ARCH}' (patch 1, pixel head), "
                    f"got '{self.arch}'; `spatialmix unshuffle` sets it for you"
                )
            if self.adv != "none":
                raise ConfigError(f"{where}.adv: adversarial training is for task 'classify' only")
            if self.dataset in STREAMED:
                raise ConfigError(
                    f"{where}.dataset: unshuffle works on tensor datasets, not '{self.dataset}'"
                )
        elif unshuffle_arch:
            raise ConfigError(
                f"{where}.task: arch '{UNSHUFFLE_ARCH}' outputs images; set task: unshuffle "
                "(or use `spatialmix unshuffle`)"
            )

    def model_kwargs(self, info: DatasetShape) -> dict[str, Any]:
        """Arguments for ``create_model(self.arch, ...)`` (the keys declared ``model=``); unset (None) sizes
        keep the model's defaults."""
        if is_timm_name(self.arch):
            return {
                "in_chans": info.in_chans,
                "num_classes": info.num_classes if self.task == "classify" else None,
                "pretrained": self.pretrained,
                "model_args": json.loads(self.model_args),
                "image_size": self.image_size or info.image_size,  # timm's img_size, where a model takes one
                **{name: getattr(self, name) for name in COMMON_ARGS},
                "mean": list(info.mean),
                "std": list(info.std),
            }
        sized = {"image_size": self.image_size or info.image_size} if self.arch in IMAGE_SIZED_MODELS else {}
        return {
            **{name: getattr(self, name) for name in ARCH_ARGS},
            **sized,
            "in_chans": info.in_chans,
            "num_classes": info.num_classes if self.task == "classify" else None,
            **{name: getattr(self, name) for name in COMMON_ARGS},
            "mean": list(info.mean),
            "std": list(info.std),
        }


# The keys that do not change what a run computes (declared ``runtime=True``): a resumed run may change
# them, and `spatialmix report` leaves them out of a run's identity when it matches runs.
RUNTIME_KEYS = frozenset(keys_where(TrainConfig, lambda s: s.runtime))
ARCH_ARGS = keys_where(TrainConfig, lambda s: s.model == "arch")
COMMON_ARGS = keys_where(TrainConfig, lambda s: s.model == "common")
TIMM_ARGS = keys_where(TrainConfig, lambda s: s.model == "timm")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def coerce(key: str, value: Any, where: str = "config", label: str | None = None) -> Any:
    """Check ``value`` against the type of config ``key`` (:func:`.coercion.coerce`: ints are accepted for
    floats; bools are never numbers). Returns the value, with ints turned into floats for float keys.
    Errors name ``label`` (default ``where.key``)."""
    if key in LEGACY_KEYS:
        raise ConfigError(f"{where}: '{key}' is no longer a key: {LEGACY_KEYS[key]}")
    return coercion.coerce(TrainConfig, key, value, where, label)
