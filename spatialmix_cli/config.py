"""The one training configuration: defaults, strict key/type/range checks, and what the model gets.

Precedence (lowest first): these defaults < recipe ``base`` < a sweep point < command-line options.
Unknown keys and wrong types are errors that name the key path (nanoGPT's configurator does the same).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .data.info import DATASETS, MAX_IMAGE_SIZE, DatasetInfo, dataset_info
from .errors import ConfigError, check_choice, did_you_mean
from .layers import FILTER_BANKS, LEARN_MODES
from .limits import MAX_ADV_STEPS, MIN_IMAGE_SIZE, check_at_most, check_seed, check_sigma
from .numbers import parse_number
from .tasks import TASKS

OPTIMIZERS = ("adamw", "sgd")
UNSHUFFLE_ARCH = "convmixer_unshuffle"
ADV_METHODS = ("none", "fgsm", "pgd")
# Float keys that also accept fractions written as strings, such as "1/255".
FRACTION_KEYS = frozenset({"adv_eps", "adv_alpha"})
SCHEDULES = ("onecycle", "cosine", "constant")
# The largest magnitude a float key may have: the optimizer works in float32 (max 3.4e38) and scales the lr
# by up to ~1e3 (Adam's bias correction, warm-up), so 1e30 keeps every step finite. A run that diverges
# from a large lr then stops with "training loss became inf" (exit 1) instead of failing inside torch.
FLOAT_LIMIT = 1e30
# Keys that change how a run executes but not what it computes (up to float rounding of kernel choice). The
# one list: a resumed run may change them, and `spatialmix report` leaves them out of a run's identity when
# it matches runs. Everything else (bf16 and cpu_bf16 included: bf16 arithmetic changes the numbers;
# sync_bn: BatchNorm statistics over the global batch) is part of what a run is.
RUNTIME_KEYS = frozenset(
    {
        "device",
        "data_dir",
        "download",
        "workers",
        "log_every",
        "eval_batch_size",
        "eval_every",  # evaluation runs in eval mode and draws no random numbers: training is unchanged
        "compile",
        "channels_last",
    }
)


@dataclass
class TrainConfig:
    # --- task --------------------------------------------------------------------------------------
    task: str = "classify"  # classify | unshuffle (restore pixel-permuted images; arch convmixer_unshuffle)
    perm_seed: int = 0  # unshuffle: seed of the fixed pixel permutation
    # --- model -------------------------------------------------------------------------------------
    arch: str = "convmixer"  # registry name; `spatialmix train --list-models`
    learn: str = "full"  # full | chans (spatial frozen) | space (channel mixing frozen)
    filters: str = "random"  # initial depthwise bank: random | same | box | identity | smooth
    smooth_sigma: float = 1.0  # Gaussian std in filter taps, for filters=smooth
    width: int | None = None  # ConvMixer hidden width / ResNet base width (None: the model's default)
    depth: int | None = None  # ConvMixer blocks / ResNet layers, 6n+2 or 8n+2 (None: default)
    kernel: int | None = None  # depthwise kernel size (None: default)
    patch: int | None = None  # ConvMixer patch size (None: default)
    depth_multiplier: int | None = None  # separable ResNet depthwise multiplier (None: 9)
    activation: str | None = None  # ConvMixer activation: gelu | relu (None: the model's; 768/32 is relu)
    # --- data --------------------------------------------------------------------------------------
    dataset: str = "cifar10"  # mnist | fashion-mnist | cifar10 | cifar100 | imagenet | synthetic
    data_dir: str | None = None  # None: $SPATIALMIX_DATA, ../shared/datasets, then download to the cache
    download: bool = True  # allow torchvision to download a missing dataset
    subset: int | None = None  # number of training images (None: all)
    test_subset: int | None = None  # number of test images (None: all)
    image_size: int | None = None  # pixels: imagenet crop size (None: 224); others resize (None: native)
    randaugment: int = 0  # RandAugment operations per image (ImageFolder data only; 0 = off)
    randaugment_magnitude: int = 9  # RandAugment magnitude (0-30)
    mixup: float = 0.0  # MixUp alpha (0 = off)
    cutmix: float = 0.0  # CutMix alpha (0 = off); with both on, one of the two per batch
    crop_pad: int | None = None  # random-crop padding in pixels (None: dataset default; 0: off)
    hflip: bool | None = None  # random horizontal flips (None: dataset default)
    workers: int = 4  # DataLoader workers, imagenet only
    # --- optimisation ------------------------------------------------------------------------------
    epochs: int = 10
    batch_size: int = 128  # images per step
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum)
    lr: float = 0.01  # peak learning rate
    weight_decay: float = 0.01  # not applied to norm layers and biases
    momentum: float = 0.9  # sgd only
    schedule: str = "onecycle"  # onecycle (linear up, linear down) | cosine (warm-up, cosine) | constant
    warmup_epochs: float | None = None  # None: 30% of training for onecycle, 0 otherwise
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global gradient norm (None: off)
    # --- adversarial training (the paper's defence, Sec. 4.3) ---------------------------------------
    adv: str = "none"  # none | fgsm | pgd: train on adversarial examples crafted on the fly
    adv_eps: float = 1 / 255  # L-inf radius in pixel units ([0, 1] images); recipes may write 1/255
    adv_steps: int = 2  # pgd steps
    adv_alpha: float | None = None  # pgd step size (None: 2.5 * adv_eps / adv_steps)
    # --- evaluation --------------------------------------------------------------------------------
    eval_batch_size: int = 512
    eval_every: int = 1  # test-set evaluation every N epochs (0: only after the last)
    # --- runtime -----------------------------------------------------------------------------------
    seed: int = 0  # model init, filter banks, data order and augmentation
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    channels_last: bool = True  # the faster layout on CPU and GPU (same numbers: tests/test_fast_paths.py)
    bf16: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on a CPU too: needs native bf16 units (refused without them)
    compile: bool | None = None  # torch.compile the training forward; None (auto): long CUDA runs only
    sync_bn: bool = False  # distributed (torchrun) GPU runs: BatchNorm statistics over the global batch
    log_every: int = 20  # steps between live loss/accuracy updates (each one syncs the device)

    # -------------------------------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config", *, model: bool = True) -> TrainConfig:
        """Build and validate a config from a (partial) mapping; errors name ``where.key``."""
        cfg = cls()
        return cfg.updated(data, where, model=model)

    def updated(self, data: dict[str, Any], where: str = "config", *, model: bool = True) -> TrainConfig:
        """A copy with ``data`` applied on top, checked key by key, then validated as a whole
        (``model=False``: all but building the model on the meta device, see :meth:`check_model`)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping of config keys, got {type(data).__name__}")
        # replace(), not asdict(): every field is a scalar, and asdict's deep copies made a recipe of
        # 10^4 points take seconds to list
        cfg = dataclasses.replace(self, **{key: coerce(key, value, where) for key, value in data.items()})
        cfg.validate(where, model=model)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def diff(self, other: TrainConfig, ignore: frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
        """Keys whose values differ: ``{key: (self's, other's)}``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}

    def validate(self, where: str = "config", *, model: bool = True) -> None:
        """Check every key and their combinations; with ``model``, also :meth:`check_model` (milliseconds
        per config: a recipe's thousands of points are checked without it, each point with it before it
        runs)."""
        from .models import check_model_name

        try:
            check_model_name(self.arch)
        except ConfigError as exc:
            raise ConfigError(f"{where}.arch: {exc}") from None
        for key, choices in (
            ("learn", LEARN_MODES),
            ("filters", FILTER_BANKS),
            ("dataset", DATASETS),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("adv", ADV_METHODS),
            ("task", TASKS),
        ):
            try:
                check_choice(key, getattr(self, key), choices)
            except ConfigError as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
        for key in ("epochs", "batch_size", "lr", "eval_batch_size", "log_every", "smooth_sigma"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{where}.{key} must be > 0, got {getattr(self, key)}")
        optional_positive = ("width", "depth", "kernel", "patch", "depth_multiplier", "subset", "test_subset")
        for key in (*optional_positive, "image_size", "grad_clip"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{where}.{key} must be > 0, got {value}")
        if self.image_size is not None and self.image_size > MAX_IMAGE_SIZE:
            raise ConfigError(
                f"{where}.image_size must be at most {MAX_IMAGE_SIZE} pixels, got {self.image_size}"
            )
        for key in ("weight_decay", "eval_every", "workers", "crop_pad", "warmup_epochs"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"{where}.{key} must be >= 0, got {value}")
        for key in ("randaugment", "randaugment_magnitude", "mixup", "cutmix"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{where}.{key} must be >= 0, got {getattr(self, key)}")
        if self.randaugment_magnitude > 30:
            raise ConfigError(
                f"{where}.randaugment_magnitude must be in [0, 30], got {self.randaugment_magnitude}"
            )
        if self.randaugment and self.dataset != "imagenet":
            raise ConfigError(
                f"{where}.randaugment: RandAugment runs per image on the ImageFolder (imagenet) pipeline; "
                f"'{self.dataset}' is augmented in batches on the device (crop and flip)"
            )
        if (self.mixup or self.cutmix) and self.task != "classify":
            raise ConfigError(f"{where}: mixup / cutmix are for task 'classify'")
        if not 0 <= self.adv_eps <= 1:
            raise ConfigError(f"{where}.adv_eps must be in [0, 1] (pixel units), got {self.adv_eps}")
        if self.adv_steps < 1:
            raise ConfigError(f"{where}.adv_steps must be >= 1, got {self.adv_steps}")
        check_at_most(f"{where}.adv_steps", self.adv_steps, MAX_ADV_STEPS)
        check_seed(f"{where}.seed", self.seed)
        check_seed(f"{where}.perm_seed", self.perm_seed)
        check_sigma(f"{where}.smooth_sigma", self.smooth_sigma)
        if self.image_size is not None and self.image_size < MIN_IMAGE_SIZE:
            raise ConfigError(
                f"{where}.image_size must be at least {MIN_IMAGE_SIZE} pixels, got {self.image_size}"
            )
        if self.adv_alpha is not None and self.adv_alpha <= 0:
            raise ConfigError(f"{where}.adv_alpha must be > 0, got {self.adv_alpha}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{where}.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"{where}.momentum must be in [0, 1), got {self.momentum}")
        if self.warmup_epochs is not None and self.warmup_epochs > self.epochs:
            raise ConfigError(f"{where}.warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})")
        self._validate_task(where)
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"{where}.device must be auto, cpu, cuda or cuda:N, got '{self.device}'")
        if model:
            self.check_model(where)

    def check_model(self, where: str = "config") -> None:
        """Build the model on the meta device (no memory, ~ms; more for ImageNet-sized ones) so bad model
        arguments fail here, before any data is loaded or anything is written."""
        from .models import create_model

        info = dataset_info(self.dataset)
        try:
            with torch.device("meta"):
                model = create_model(self.arch, **self.model_kwargs(info))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        size = self.image_size or info.image_size
        seen: list[tuple[str, tuple[int, int], tuple[int, int]]] = []

        def spatial(name: str) -> Any:
            def record(module: torch.nn.Conv2d, args: tuple[torch.Tensor, ...]) -> None:
                seen.append((name, tuple(module.kernel_size), tuple(args[0].shape[-2:])))  # type: ignore[arg-type]

            return record

        hooks = [
            m.register_forward_pre_hook(spatial(n))
            for n, m in model.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels and max(m.kernel_size) > 1
        ]
        try:  # a forward pass on the meta device: shapes only, no memory, no arithmetic
            with warnings.catch_warnings():  # torch's own notes (even kernel with 'same' padding) once, later
                warnings.simplefilter("ignore")
                model.eval()(torch.empty(1, info.in_chans, size, size, device="meta"))
        except (RuntimeError, ValueError) as exc:
            reason = str(exc).split("\n")[0]
            raise ConfigError(
                f"{where}: model '{self.arch}' cannot run on the {size}x{size} images of '{self.dataset}' "
                f"({reason}); use a smaller patch / kernel / depth or a larger image_size"
            ) from None
        finally:
            for hook in hooks:
                hook.remove()
        for name, (kh, kw), (h, w) in seen:
            # Only 2S - 1 taps of a kernel can reach an S-pixel map; the others multiply padding zeros, at a
            # cost that grows with k^2 (a 1001-tap kernel on a 32-px map computes ~10^5 times too much).
            if kh > 2 * h - 1 or kw > 2 * w - 1:
                raise ConfigError(
                    f"{where}: the {kh}x{kw} depthwise kernel of '{name}' is larger than the {2 * h - 1}x"
                    f"{2 * w - 1} taps that can reach its {h}x{w} feature map (the rest only multiply padding "
                    "zeros); use a smaller kernel, a smaller patch or a larger image_size"
                )

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
            if self.dataset == "imagenet":
                raise ConfigError(f"{where}.dataset: unshuffle works on tensor datasets, not 'imagenet'")
        elif unshuffle_arch:
            raise ConfigError(
                f"{where}.task: arch '{UNSHUFFLE_ARCH}' outputs images; set task: unshuffle "
                "(or use `spatialmix unshuffle`)"
            )

    def model_kwargs(self, info: DatasetInfo) -> dict[str, Any]:
        """Arguments for ``create_model(self.arch, ...)``; unset (None) sizes keep the model's defaults."""
        return {
            "width": self.width,
            "depth": self.depth,
            "kernel": self.kernel,
            "patch": self.patch,
            "depth_multiplier": self.depth_multiplier,
            "activation": self.activation,
            "in_chans": info.in_chans,
            "num_classes": info.num_classes if self.task == "classify" else None,
            "learn": self.learn,
            "filters": self.filters,
            "smooth_sigma": self.smooth_sigma,
            "seed": self.seed,
            "mean": list(info.mean),
            "std": list(info.std),
        }


_HINTS = typing.get_type_hints(TrainConfig)
_SCIENTIFIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+\s*")


def _type_name(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    name = {int: "an integer", float: "a number", str: "a string", bool: "true/false"}[base]
    return f"{name} or null" if type(None) in typing.get_args(hint) else name


def coerce(key: str, value: Any, where: str = "config", label: str | None = None) -> Any:
    """Check ``value`` against the type of config ``key`` (ints are accepted for floats; bools are never
    numbers). Returns the value, with ints turned into floats for float keys. Errors name ``label``
    (default ``where.key``)."""
    if key not in _HINTS:
        raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(str(key), _HINTS)}")
    label = label or f"{where}.{key}"
    hint = _HINTS[key]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if value is None:
        if optional:
            return None
    elif base is bool and isinstance(value, bool):
        return value
    elif base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif base is float and (
        (isinstance(value, (int, float)) and not isinstance(value, bool))
        or (isinstance(value, str) and _SCIENTIFIC.fullmatch(value))
    ):
        # A string like "1e-3" is a number: YAML 1.1 (PyYAML) reads 1e-3 without a dot as text.
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number, got {value!r}")
        if abs(value) > FLOAT_LIMIT:
            raise ConfigError(f"{label} must be at most {FLOAT_LIMIT:g} in size, got {value!r}")
        return float(value)
    elif base is str and isinstance(value, str):
        return value
    elif base is float and key in FRACTION_KEYS and isinstance(value, str):
        return parse_number(value, label)
    raise ConfigError(f"{label} must be {_type_name(hint)}, got {value!r} ({type(value).__name__})")
