"""What ``spatialmix info`` shows: what a checkpoint is (model and its arguments, learn mode, filters,
dataset and classes, epochs trained, its run's result, trainable / frozen parameters per layer type),
read from its metadata and header. No data is loaded and no weight is read: the model is built on the
meta device, only to count its parameters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.info import DatasetInfo
from ..layers import param_report
from ..store.checkpoint import build_model_from_meta, checkpoint_file, read_metadata, tensor_shapes
from ..store.rundir import read_result


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """One record describing the checkpoint at ``path`` (a run directory stands for its model.safetensors).
    A file that is not a spatialmix checkpoint, or whose metadata does not match its tensors, is a
    CheckpointError."""
    path = checkpoint_file(path)
    meta, model = model_skeleton(path)
    kwargs = dict(meta["model"]["kwargs"])
    info = DatasetInfo.from_dict(meta["dataset"]) if "dataset" in meta else None
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    return {
        "checkpoint": str(path),
        "kind": meta.get("kind"),
        "bytes": os.path.getsize(path),
        "spatialmix_version": meta.get("spatialmix_version"),
        "arch": meta["model"]["name"],
        "model_kwargs": kwargs,
        "learn": str(kwargs.get("learn", "full")),
        "filters": str(kwargs.get("filters", "random")),
        "task": config.get("task", "classify"),
        "dataset": info.name if info else None,
        "image_size": info.image_size if info else None,
        "in_chans": info.in_chans if info else None,
        "classes": info.num_classes if info else None,
        # A folder dataset's: its class names (label order) and the folder it was read from.
        "class_names": list(info.classes) if info and info.classes is not None else None,
        "source": info.source if info else None,
        "seed": config.get("seed"),
        "epochs_trained": meta.get("epoch"),
        "epochs": config.get("epochs"),
        "metrics": meta.get("metrics") or None,
        "result": _run_result(path),
        "params": param_report(model),
    }


def model_skeleton(path: Path) -> tuple[dict[str, Any], nn.Module]:
    """A checkpoint's metadata and its model built on the meta device (shapes only, nothing allocated),
    checked against the file's tensors: what can be known of a checkpoint without reading its weights."""
    meta = read_metadata(path)
    shapes = tensor_shapes(path)
    with torch.device("meta"):
        return meta, build_model_from_meta(meta, path, shapes)


def _run_result(path: Path) -> dict[str, Any] | None:
    """The result.json of the run directory the checkpoint sits in, if it has one."""
    return read_result(path.parent, require_weights=False)
