"""Checkpoints as safetensors files, with everything needed to rebuild the model in the metadata.

No pickle anywhere: tensors go through safetensors, everything else (model name and kwargs, learn mode,
filter bank, seed, dataset and normalisation, epoch, metrics, config, optimizer hyper-parameters) is
JSON stored under the ``spatialmix`` metadata key. Files are written atomically (temp file, fsync,
rename), so a crash mid-write leaves the previous file intact.

Two kinds of file share the format: ``model.safetensors`` (weights) and ``last.safetensors`` (weights +
optimizer state + progress, for ``--resume``). Both load with :func:`load_checkpoint`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from .data.info import DatasetInfo
from .errors import CheckpointError, ConfigError

META_KEY = "spatialmix"
FORMAT_VERSION = 1
_OPTIM_PREFIX = "__optim__."


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; give it the permissions a plain open() would (0666 minus umask),
        # so checkpoints and results can be shared like any other file.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{_OPTIM_PREFIX}{pid}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key[len(_OPTIM_PREFIX) :].split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, entry in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Save ``model``'s state dict (and ``optimizer``'s state, for resume) with ``meta`` as JSON."""
    from . import __version__

    tensors = _state_tensors(model)
    full_meta = {"format_version": FORMAT_VERSION, "spatialmix_version": __version__, **meta}
    if optimizer is not None:
        optim_tensors, optim_meta = _optimizer_tensors(optimizer)
        tensors.update(optim_tensors)
        full_meta["optimizer"] = optim_meta
    metadata = {META_KEY: json.dumps(full_meta), "format": "pt"}
    atomic_write_bytes(Path(path), safetensors_bytes(tensors, metadata=metadata))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The parsed ``spatialmix`` metadata of a checkpoint, with clear errors for files that are not ours."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder; pass the .safetensors file inside it (e.g. {path}/model.safetensors)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from None
    if raw is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not a spatialmix checkpoint (no '{META_KEY}' metadata)"
        )
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
            raise ValueError("no 'model' entry")
        if not isinstance(meta["model"].get("name"), str) or not isinstance(
            meta["model"].get("kwargs"), dict
        ):
            raise ValueError("'model' needs a 'name' and 'kwargs'")
    except ValueError as exc:
        raise CheckpointError(f"{path} has damaged spatialmix metadata: {exc}") from None
    return meta


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from None


def build_model_from_meta(meta: dict[str, Any], path: str | Path = "<checkpoint>") -> nn.Module:
    from .models import create_model, is_model

    name, kwargs = meta["model"]["name"], meta["model"]["kwargs"]
    if not is_model(name):
        raise CheckpointError(f"{path} holds model '{name}', which this version of spatialmix does not know")
    try:
        return create_model(name, **kwargs)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path} names model '{name}' with arguments that do not build: {exc}"
        ) from None


@dataclass
class Checkpoint:
    """A loaded checkpoint: the ready model (eval mode) and its metadata."""

    path: Path
    model: nn.Module
    meta: dict[str, Any]

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo.from_dict(self.meta["dataset"])

    @property
    def learn(self) -> str:
        return str(self.meta["model"]["kwargs"].get("learn", "full"))

    @property
    def filters(self) -> str:
        return str(self.meta["model"]["kwargs"].get("filters", "random"))


def load_into(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model`` (strict: every key and shape must match) and, with
    ``optimizer``, its optimizer state. Returns the metadata."""
    path = Path(path)
    meta = read_metadata(path)
    tensors = read_tensors(path)
    weights = {k: v for k, v in tensors.items() if not k.startswith(_OPTIM_PREFIX)}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise CheckpointError(
            f"{path} does not match model '{meta['model']['name']}' ({detail.strip()})"
        ) from None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{path} holds no optimizer state; resume from last.safetensors")
        optim = {k: v for k, v in tensors.items() if k.startswith(_OPTIM_PREFIX)}
        try:
            optimizer.load_state_dict(_optimizer_state(optim, meta["optimizer"]))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this run: {exc}") from None
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model named in the metadata, load the weights, and return it ready (eval mode, on
    ``device``) with its metadata. Needs no other input."""
    path = Path(path)
    model = build_model_from_meta(read_metadata(path), path)
    meta = load_into(path, model)
    return Checkpoint(path, model.to(device).eval(), meta)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The ready model (eval mode) of a checkpoint, and nothing else."""
    return load_checkpoint(path, device).model
