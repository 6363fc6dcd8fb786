"""Checkpoints as safetensors files, with everything needed to rebuild the model in the metadata.

No pickle anywhere: tensors go through safetensors, everything else (model name and kwargs, learn mode,
filter bank, seed, dataset and normalisation, epoch, metrics, config, optimizer hyper-parameters) is
JSON stored under the ``spatialmix`` metadata key. Files are written atomically (temp file, fsync,
rename; :mod:`.safefiles`), so a crash mid-write leaves the previous file intact, and only regular files
are read (a FIFO named as a checkpoint is refused instead of blocking the open).

Two kinds of file share the format: ``model.safetensors`` (weights) and ``last.safetensors`` (weights +
optimizer state + progress, for ``--resume``). Both load with :func:`load_checkpoint`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ... import __version__
from ...config.names import is_timm_name
from ...config.runfiles import MODEL_FILE
from ...data.info import DatasetInfo
from ...errors import CheckpointError, ConfigError
from ...models import check_model_name, create_model, is_model
from ...models.timm_models import check_timm_version, rebuild_kwargs, shapes_only
from ...safefiles import NotRegularFile, atomic_write_bytes, check_regular, open_regular
from .validate import (
    check_normalization,
    check_values,
    dataset_mismatch,
    gone_key_problem,
    history_problem,
    metadata_problem,
    progress_fit_problem,
    stored_config_problem,
)

META_KEY = "spatialmix"
FORMAT_VERSION = 1
_OPTIM_PREFIX = "__optim__."


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
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({_guess(path)}): {exc}") from None
    if raw is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not a spatialmix checkpoint (no '{META_KEY}' metadata); "
            "checkpoints from other programs cannot be loaded"
        )
    return parse_metadata(raw, path)


def _check_file(path: str | Path) -> None:
    """Only a regular file is handed to safetensors (a FIFO would block its open forever)."""
    try:
        check_regular(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except NotRegularFile as exc:
        if os.path.isdir(path):
            raise CheckpointError(
                f"{path} is a folder; pass the .safetensors file inside it (e.g. {path}/model.safetensors)"
            ) from None
        raise CheckpointError(f"checkpoint {exc}") from None
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None


def _guess(path: Path) -> str:
    """Why a file might not parse: a pickle / torch.save file is named as such (we never load those)."""
    try:
        with open(open_regular(path), "rb") as f:
            head = f.read(4)
    except OSError:
        return "unreadable"
    if head[:1] == b"\x80" or head[:2] == b"PK":
        return "it looks like a torch.save / pickle file, which spatialmix never loads because loading it can run code"
    return "empty" if not head else "truncated or corrupt?"


def parse_metadata(raw: str, path: str | Path = "<checkpoint>") -> dict[str, Any]:
    """Parse and check the ``spatialmix`` metadata JSON of a checkpoint. Every part the tool reads later
    is checked here, since the file may come from anyone: the only outcomes are the metadata or a
    CheckpointError."""
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path} has damaged spatialmix metadata (not JSON: {exc})") from None
    problem = metadata_problem(meta)
    if problem:
        raise CheckpointError(f"{path} has damaged spatialmix metadata: {problem}")
    problem = gone_key_problem(meta)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    if "dataset" in meta:
        try:
            DatasetInfo.from_dict(meta["dataset"], "dataset")
        except ConfigError as exc:
            raise CheckpointError(f"{path} has damaged spatialmix metadata: {exc}") from None
        problem = dataset_mismatch(meta)
        if problem:
            raise CheckpointError(f"{path} has damaged spatialmix metadata: {problem}")
    problem = stored_config_problem(meta)
    if problem:
        raise CheckpointError(f"{path} has damaged spatialmix metadata: {problem}")
    return meta


def check_train_state(path: str | Path) -> dict[str, Any]:
    """Check a ``last.safetensors`` before ``--resume`` rewrites anything: its metadata (progress and
    optimizer fields) and its optimizer tensors (finite, steps and second moments >= 0). Returns the
    metadata; a problem is a CheckpointError."""
    path = Path(path)
    meta = read_metadata(path)
    if "optimizer" not in meta:
        raise CheckpointError(f"{path} holds no optimizer state; it is not a train state to resume")
    problem = history_problem(meta.get("history", []))
    if problem:
        raise CheckpointError(
            f"{path} has damaged spatialmix metadata: {problem}; pass --overwrite to start over"
        )
    for key, tensor in read_tensors(path).items():
        if not key.startswith(_OPTIM_PREFIX):
            continue
        name = key.rsplit(".", 1)[-1]
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: optimizer tensor '{key}' is {tensor.dtype}, not floating point")
        bad = not bool(torch.isfinite(tensor).all())
        bad = bad or (name in ("step", "exp_avg_sq") and bool((tensor < 0).any()))
        if bad:
            raise CheckpointError(
                f"{path}: optimizer tensor '{key}' holds NaN, Inf{' or negative' if name in ('step', 'exp_avg_sq') else ''} "
                "values (the file is damaged or was edited); pass --overwrite to start over"
            )
    return meta


def check_resume(path: str | Path, epochs: int, steps_per_epoch: int) -> dict[str, Any]:
    """Check a ``last.safetensors`` (:func:`check_train_state`) against the run that resumes it, read-only:
    its progress must be one a run of ``epochs`` epochs of ``steps_per_epoch`` steps (the run's config and
    data) could have saved. Returns the metadata; a problem is a CheckpointError."""
    meta = check_train_state(path)
    problem = progress_fit_problem(meta, epochs, steps_per_epoch)
    if problem:
        raise CheckpointError(
            f"{path} does not fit this run: {problem} (the file is damaged or was edited, or the run's data "
            "changed since); pass --overwrite to start over"
        )
    return meta


def tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in a safetensors file, read from its header (no tensor is loaded)."""
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from None


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from None


class _Oversized(Exception):
    """Raised inside a meta-device build that registers more or bigger parameters than the file holds."""


def build_model_from_meta(
    meta: dict[str, Any],
    path: str | Path = "<checkpoint>",
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> nn.Module:
    """Build the model the metadata names. With ``shapes`` (the file's tensors), the model is first built
    on the meta device and checked against them, so a file whose metadata does not match its tensors, or
    asks for a huge model, fails before any memory is allocated."""
    name = meta["model"]["name"]
    # pretrained weights come from the file, not the network
    kwargs = rebuild_kwargs(name, meta["model"]["kwargs"])
    if not is_model(name):
        if is_timm_name(name):  # timm missing, or a timm without this model: say which
            try:
                check_model_name(name)
            except ConfigError as exc:
                raise CheckpointError(f"{path} holds model '{name}': {exc}") from None
        raise CheckpointError(f"{path} holds model '{name}', which this version of spatialmix does not know")
    check_timm_version(meta["model"], path)
    if shapes is not None:
        _check_shapes(name, kwargs, shapes, path)
    try:
        return create_model(name, **kwargs)
    except (ConfigError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(
            f"{path} names model '{name}' with arguments that do not build: {exc}"
        ) from None


def _check_shapes(name: str, kwargs: dict[str, Any], shapes: dict[str, tuple[int, ...]], path: Any) -> None:
    weights = {k: v for k, v in shapes.items() if not k.startswith(_OPTIM_PREFIX)}
    largest = max((math.prod(s) for s in weights.values()), default=0)
    count = 0

    def guard(module: nn.Module, pname: str, param: nn.Parameter | None) -> None:
        nonlocal count
        count += 1
        if count > len(weights) or (param is not None and param.numel() > largest):
            raise _Oversized

    # The hook is process-wide while it is registered; it is removed in `finally` and only raises
    # for parameters built inside this block.
    handle = nn.modules.module.register_module_parameter_registration_hook(guard)
    try:  # shapes only: learn mode and banks do not change them (and a timm model is built once, not twice)
        with torch.device("meta"), shapes_only():
            skeleton = create_model(name, **{**kwargs, "learn": "full", "filters": "pretrained"})
    except _Oversized:
        raise CheckpointError(
            f"{path} does not match model '{name}' (the arguments in its metadata ask for more or larger "
            "tensors than the file holds; the file is damaged or was edited)"
        ) from None
    except (ConfigError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(
            f"{path} names model '{name}' with arguments that do not build: {exc}"
        ) from None
    finally:
        handle.remove()
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = [k for k in expected if k in weights and expected[k] != weights[k]]
    if missing or extra or wrong:
        if wrong:
            k = wrong[0]
            detail = f"tensor '{k}' has shape {list(weights[k])} in the file, the model expects {list(expected[k])}"
        else:
            detail = f"missing tensors {missing[:3]}, unexpected tensors {extra[:3]}"
        raise CheckpointError(f"{path} does not match model '{name}' ({detail})")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the ready model (eval mode) and its metadata."""

    path: Path
    model: nn.Module
    meta: dict[str, Any]

    @property
    def info(self) -> DatasetInfo:
        if "dataset" not in self.meta:
            raise CheckpointError(f"{self.path} records no dataset; it was not written by `spatialmix train`")
        return DatasetInfo.from_dict(self.meta["dataset"])  # checked by read_metadata

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
    check_values(tensors, model.state_dict(), path)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise CheckpointError(
            f"{path} does not match model '{meta['model']['name']}' ({detail.strip()})"
        ) from None
    check_normalization(model, path)
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
    model = build_model_from_meta(read_metadata(path), path, tensor_shapes(path))
    meta = load_into(path, model)
    return Checkpoint(path, model.to(device).eval(), meta)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The ready model (eval mode) of a checkpoint, and nothing else."""
    return load_checkpoint(path, device).model


def checkpoint_file(path: str | Path) -> Path:
    """A run directory stands for its final ``model.safetensors``; any other path is the checkpoint itself."""
    path = Path(path)
    return path / MODEL_FILE if os.path.isdir(path) else path
