"""Where and how a run computes: the torch device for ``--device``, bf16 autocast, and uint8 → float
inputs. Small and public: the trainer, evaluation, ``spatialmix bench`` and the attack command share it."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ConfigError
from .hardware import cpu_info

if TYPE_CHECKING:
    from ..config.train import TrainConfig


def resolve_device(name: str) -> torch.device:
    """The torch device for ``--device``; a device this machine does not have is a ConfigError (exit 2)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name} asked for, but no CUDA GPU is available here; use --device cpu or auto"
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name} asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    if name == "mps" and not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
        raise ConfigError(
            "--device mps asked for, but this PyTorch has no usable Apple MPS device here; use --device cpu or auto"
        )
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name}: {exc}") from None


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether ``cfg`` runs in bf16 autocast on ``device``: ``bf16`` on CUDA, ``cpu_bf16`` on a CPU."""
    return cfg.bf16 if device.type == "cuda" else device.type == "cpu" and cfg.cpu_bf16


def check_bf16(cfg: TrainConfig, device: torch.device) -> None:
    """Refuse ``cpu_bf16`` on a CPU without native bf16 arithmetic: oneDNN would emulate it, slower than
    float32, and the numbers would differ for nothing."""
    if device.type == "cpu" and cfg.cpu_bf16 and not cpu_info().bf16:
        raise ConfigError(
            "cpu_bf16: this CPU has no native bf16 units (AVX512-BF16 / AMX-BF16 / Arm BF16 in /proc/cpuinfo); "
            "bf16 would be emulated and slower than float32 — leave cpu_bf16 off (train: --set "
            "cpu_bf16=false; bench: --no-cpu-bf16)"
        )


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``bf16`` (see ``use_bf16``), else nothing."""
    if bf16 and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_float(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 [0, 255] → float [0, 1] (the models normalise inside)."""
    x = images.float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
