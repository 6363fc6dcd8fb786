"""What a checkpoint's contents must be before anything uses them: the metadata (model, dataset, progress,
optimizer hyper-parameters) field by field, and the loaded tensors (dtype, finite values, usable input
normalisation and BatchNorm statistics). Pure checks on parsed data: each returns a problem or raises
CheckpointError; reading the file is :mod:`spatialmix_cli.store.checkpoint`'s job."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...config.train import LEGACY_KEYS, TrainConfig
from ...errors import CheckpointError, ConfigError
from ...layers.learn import BATCH_NORMS
from ...layers.normalize import Normalize

# The running sum of the metric was written "correct" before it was named "score" (it holds the MSE for
# un-shuffling); checkpoints and train states written then still load and resume (training.state.restore).
LEGACY_SUMS = {"correct": "score"}
# The JSON kind of each optional top-level section of the metadata, in the order they are checked.
_SECTION_KINDS = {"config": dict, "metrics": dict, "progress": dict, "history": list, "optimizer": dict}


def dataset_mismatch(meta: dict[str, Any]) -> str | None:
    """The model and the dataset it records must agree on channels and classes (a 1-channel dataset on an
    RGB model would otherwise fail deep in a convolution, or a wrong class count give chance accuracy)."""
    kwargs, data = meta["model"]["kwargs"], meta["dataset"]
    for key in ("in_chans", "num_classes"):
        if key in kwargs and kwargs[key] is not None and kwargs[key] != data[key]:
            return f"the model has {key} {kwargs[key]!r} but its dataset '{data['name']}' has {data[key]!r}"
    return None


def gone_key_problem(meta: dict[str, Any]) -> str | None:
    """A key that is gone (an older spatialmix wrote it) in the model arguments or the config, with where
    its fact lives now; ``meta`` has passed :func:`metadata_problem`."""
    for part, entry in (("model arguments", meta["model"]["kwargs"]), ("config", meta.get("config", {}))):
        for key, fix in LEGACY_KEYS.items():
            if key in entry:
                return f"'{key}' in its {part}: {fix}"
    return None


def stored_config_problem(meta: dict[str, Any]) -> str | None:
    """The config a checkpoint records and its dataset's image size, checked by the options' own bounds
    (TrainConfig's fields: image_size in [4, 4096], each size key's ``at_most``); ``meta`` has passed
    :func:`metadata_problem` and its dataset ``DatasetInfo.from_dict``. (A 1-pixel image size reached a
    resize and ended in an ATen internal assert.)"""
    try:
        if "config" in meta:
            TrainConfig.from_dict(meta["config"], "config")
        if "dataset" in meta:
            TrainConfig.from_dict({"image_size": meta["dataset"]["image_size"]}, "dataset")
    except ConfigError as exc:
        return str(exc)
    return None


def metadata_problem(meta: Any) -> str | None:
    if not isinstance(meta, dict):
        return f"expected a JSON object, got {type(meta).__name__}"
    model = meta.get("model")
    if not isinstance(model, dict):
        return "no 'model' entry"
    if not isinstance(model.get("name"), str) or not isinstance(model.get("kwargs"), dict):
        return "'model' needs a 'name' (string) and 'kwargs' (object)"
    for key, kind in _SECTION_KINDS.items():
        if key in meta and not isinstance(meta[key], kind):
            return f"'{key}' must be a JSON {'object' if kind is dict else 'array'}"
    if "history" in meta and not all(isinstance(row, dict) for row in meta["history"]):
        return "'history' must be an array of JSON objects (one per epoch)"
    if "optimizer" in meta:
        problem = optimizer_problem(meta["optimizer"])
        if problem:
            return problem
    return progress_problem(meta["progress"]) if "progress" in meta else None


_OFF_FLAGS = ("amsgrad", "maximize", "capturable", "differentiable")  # spatialmix never turns these on


_RATES = ("betas", "momentum", "dampening")  # each in [0, 1)


def optimizer_problem(optim: dict[str, Any]) -> str | None:
    """The optimizer hyper-parameters ``--resume`` loads must be ones the trainer could have written:
    finite non-negative lr and weight decay, eps > 0, rates in [0, 1), the flags spatialmix never sets off,
    integer parameter ids. (``load_state_dict`` takes anything and fails — or diverges — steps later.)"""
    groups = optim.get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return "'optimizer.param_groups' must be an array of JSON objects"
    if not isinstance(optim.get("scalars", {}), dict):
        return "'optimizer.scalars' must be a JSON object"
    for i, group in enumerate(groups):
        where = f"'optimizer.param_groups[{i}]"
        params = group.get("params")
        if not isinstance(params, list) or not all(_is_int(p) and p >= 0 for p in params):
            return f"{where}.params' must be an array of parameter ids"
        for key in ("lr", "weight_decay"):
            if key in group and not (
                _is_number(group[key]) and math.isfinite(group[key]) and group[key] >= 0
            ):
                return f"{where}.{key}' must be a finite number >= 0, got {group[key]!r}"
        if "eps" in group and not (
            _is_number(group["eps"]) and math.isfinite(group["eps"]) and group["eps"] > 0
        ):
            return f"{where}.eps' must be a finite number > 0, got {group['eps']!r}"
        for key in _RATES:
            values = group.get(key, [])
            values = values if isinstance(values, list) else [values]
            if key == "betas" and key in group and len(values) != 2:
                return f"{where}.betas' must be two numbers, got {group[key]!r}"
            if not all(_is_number(v) and 0 <= v < 1 for v in values):
                return f"{where}.{key}' must be in [0, 1), got {group[key]!r}"
        for key in _OFF_FLAGS:
            if group.get(key, False) is not False:
                return f"{where}.{key}' must be false (spatialmix never sets it), got {group[key]!r}"
    return None


_PROGRESS_COUNTERS = ("epoch", "step", "global_step")


def progress_problem(progress: dict[str, Any]) -> str | None:
    """``progress`` (where a run stopped, read by ``--resume``) must be exactly what the trainer writes:
    non-negative integer counters, a finite number of seconds and finite running sums."""
    unknown = sorted(set(progress) - {*_PROGRESS_COUNTERS, "seconds", "sums"})
    if unknown:
        return f"'progress' has unknown fields {unknown}"
    for key in _PROGRESS_COUNTERS:
        value = progress.get(key, 0)
        if not _is_int(value) or value < 0:
            return f"'progress.{key}' must be a non-negative integer, got {value!r}"
    seconds = progress.get("seconds", 0.0)
    if not _is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        return f"'progress.seconds' must be a non-negative number, got {seconds!r}"
    sums = progress.get("sums", {})
    if (
        not isinstance(sums, dict)
        or set(sums) not in ({"loss", "score", "count"}, {"loss", *LEGACY_SUMS, "count"})
        or not all(_is_number(v) and math.isfinite(v) and v >= 0 for v in sums.values())
    ):
        return f"'progress.sums' must hold finite non-negative loss, score and count, got {sums!r}"
    return None


# The fields of a history row (training.state.epoch_record) that --resume reads, and those it may hold:
# each a finite number, the optional ones also null (no test evaluation that epoch).
_ROW_NUMBERS = ("train_loss", "seconds")
_ROW_OPTIONAL = ("test_loss", "lr", "images_per_s", "train_acc", "test_acc", "train_psnr", "test_psnr")


def history_problem(history: list[dict[str, Any]]) -> str | None:
    """Each row of ``history`` as the trainer writes it: epoch ``i + 1``, a non-negative step count,
    finite numbers, seconds that never go back (a resumed run reads the last row's seconds and the final
    result its losses)."""
    seconds = 0.0
    for i, row in enumerate(history):
        where = f"'history[{i}]"
        if row.get("epoch") != i + 1 or not _is_int(row.get("epoch")):
            return f"{where}.epoch' must be {i + 1}, got {row.get('epoch')!r}"
        if not _is_int(row.get("step")) or row["step"] < 0:
            return f"{where}.step' must be a non-negative integer, got {row.get('step')!r}"
        for key in (*_ROW_NUMBERS, *_ROW_OPTIONAL):
            value = row.get(key)
            if (key in _ROW_NUMBERS or value is not None) and not (
                _is_number(value) and math.isfinite(value)
            ):
                return f"{where}.{key}' must be a finite number, got {value!r}"
        if "test_loss" not in row:
            return f"{where}' has no 'test_loss'"
        if row["seconds"] < seconds:
            return f"{where}.seconds' goes back to {row['seconds']!r} from {seconds!r}"
        seconds = row["seconds"]
        if not isinstance(row.get("precise_bn", {}), (dict, type(None))):
            return f"{where}.precise_bn' must be a JSON object, got {row['precise_bn']!r}"
    return None


def progress_fit_problem(meta: dict[str, Any], epochs: int, steps_per_epoch: int) -> str | None:
    """Whether the progress of a train state (``meta`` passed :func:`metadata_problem` and
    :func:`history_problem`) is one a run of ``epochs`` epochs of ``steps_per_epoch`` steps (this run's
    config and data) could have saved: epoch in [0, epochs], step in [0, steps_per_epoch] (0 once every
    epoch is done), the global step they make, one history row per finished epoch ending at its step."""
    progress, history = meta.get("progress", {}), meta.get("history", [])
    epoch, step = progress.get("epoch", 0), progress.get("step", 0)
    if epoch > epochs:
        return f"'progress.epoch' is {epoch}, beyond the run's {epochs} epochs"
    if epoch == epochs and step:
        return f"'progress.step' is {step} after the run's last epoch (must be 0)"
    if step > steps_per_epoch:
        return f"'progress.step' is {step}, beyond the {steps_per_epoch} steps of an epoch of this run's data"
    if progress.get("global_step", 0) != epoch * steps_per_epoch + step:
        return (
            f"'progress.global_step' is {progress.get('global_step', 0)}, not {epoch * steps_per_epoch + step} "
            f"(epoch {epoch}, step {step} of {steps_per_epoch} per epoch)"
        )
    if len(history) != epoch:
        return f"'history' has {len(history)} rows for {epoch} finished epochs (one per epoch)"
    for i, row in enumerate(history):
        if row["step"] != (i + 1) * steps_per_epoch:
            return f"'history[{i}].step' is {row['step']}, not {(i + 1) * steps_per_epoch}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_values(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse what ``load_state_dict`` would silently accept: a tensor of another dtype (it casts int8 or
    bool weights to float) and NaN / Inf values (spatialmix never saves them: a diverged run keeps its
    last good state), which would give chance accuracy and meaningless attack and spectrum numbers."""
    for key, tensor in tensors.items():
        want = expected.get(key)
        if want is not None and tensor.dtype != want.dtype:
            raise CheckpointError(
                f"{path}: tensor '{key}' is {str(tensor.dtype).removeprefix('torch.')} in the file, the model "
                f"expects {str(want.dtype).removeprefix('torch.')} (the file is damaged or was edited)"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{path}: tensor '{key}' holds NaN or Inf values (spatialmix never saves non-finite weights: "
                "the file is damaged or was edited)"
            )


def check_normalization(model: nn.Module, path: Path) -> None:
    """The loaded input normalisation and BatchNorm statistics must be usable: ``std`` > 0 (a zero divides
    every image into Inf) and running variances >= 0."""
    for name, module in model.named_modules():
        if isinstance(module, Normalize) and not bool((module.std > 0).all()):
            raise CheckpointError(
                f"{path}: tensor '{name + '.' if name else ''}std' (input normalisation) must be > 0, got "
                f"{module.std.flatten().tolist()} (the file is damaged or was edited)"
            )
        var = getattr(module, "running_var", None)
        if isinstance(module, BATCH_NORMS) and var is not None and bool((var < 0).any()):
            raise CheckpointError(
                f"{path}: tensor '{name}.running_var' has negative values (the file is damaged or was edited)"
            )
