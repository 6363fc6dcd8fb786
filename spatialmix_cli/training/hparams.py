"""TensorBoard hparams of a run: what the HParams tab lists, filters and compares runs by.

Each run directory holds one hparams session in its own event files (next to its scalars, not in a
timestamped sub-run as ``SummaryWriter.add_hparams`` makes): every key of what a run is (not the runtime
keys) and the model's parameter counts, with the values TensorBoard takes (``None`` is ``"none"``). Its
metrics are the scalar tags the run logs (``test/acc``, ``train/loss``, ...): the tab shows each one's last
value. The experiment summary beside it (the columns, their types, a key's declared choices as a discrete
domain, the metric tags) is derived from the config's declaration alone, so every run writes the same one
(TensorBoard reads the first it finds in a log directory and ignores the rest).

TensorBoard's own ``hparams.summary`` imports TensorFlow; these summaries are built from its protos.
"""

from __future__ import annotations

import functools
import importlib
import time
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

from ..config.keys import TRAIN, specs
from ..config.train import RUNTIME_KEYS, TrainConfig

EVENTS_GLOB = "events.out.tfevents.*"  # in the run directory: ``tensorboard --logdir runs/`` names each run
HPARAMS_PREFIX = "_hparams_/"  # tensorboard.plugins.hparams.metadata's tag names
SESSION_TAG = HPARAMS_PREFIX + "session_start_info"
EXPERIMENT_TAG = HPARAMS_PREFIX + "experiment"
SIZE_KEYS = ("params_trainable", "params_total")  # the model's size, from the trainer's parameter report
HParam = str | int | float | bool


def hparam_value(value: Any) -> HParam:
    """A config value as TensorBoard's hparams take it: a number, a bool or a string (``None`` is
    ``"none"``, a sequence its text)."""
    if value is None:
        return "none"
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


@functools.cache
def hparam_keys() -> tuple[str, ...]:
    """The config keys a session lists, in the tab's column order: the keys of what a run is that
    ``spatialmix train --help`` lists (arch, learn, filters, the model's size keys, dataset, epochs, lr,
    batch size, seed...; the tab shows the first five), then every other key of what a run is."""
    identity = [name for name in specs(TrainConfig) if name not in RUNTIME_KEYS]
    everyday = [name for name in identity if TRAIN in specs(TrainConfig)[name].flags]
    return (*everyday, *(name for name in identity if name not in everyday))


def hparams_of(cfg: TrainConfig, params: dict[str, Any]) -> dict[str, HParam]:
    """A run's hparams: every key of :func:`hparam_keys` (a sweep's varying keys among them), then the
    model's parameter counts (``params``: the trainer's parameter report)."""
    values = cfg.to_dict()
    shown = {name: values[name] for name in hparam_keys()}
    shown.update({key: params[key] for key in SIZE_KEYS if key in params})
    return {name: hparam_value(value) for name, value in shown.items()}


def _hparam_info(api: ModuleType, name: str) -> Any:
    """A column of the tab: its type from the key's annotation (none where it may be ``None``: the
    value is then a number or ``"none"``) and its declared choices as a discrete domain."""
    hint = typing.get_type_hints(TrainConfig).get(name, int)  # the size keys are counts
    args = typing.get_args(hint) or (hint,)
    info = api.HParamInfo(name=name)
    if type(None) in args:
        return info
    info.type = {bool: api.DATA_TYPE_BOOL, str: api.DATA_TYPE_STRING}.get(args[0], api.DATA_TYPE_FLOAT64)
    choices = specs(TrainConfig)[name].choice_list() if name in specs(TrainConfig) else None
    if choices is not None:
        info.domain_discrete.extend(choices)
    return info


def _summary(metadata: ModuleType, tag: str, **data: Any) -> Any:
    plugin_data = metadata.plugin_data_pb2.HParamsPluginData(**data)
    summary = metadata.summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data))
    return summary


def hparams_summaries(hparams: dict[str, HParam], metric_tags: list[str]) -> list[Any]:
    """The experiment summary and the run's session, as the Summary protos the HParams tab reads."""
    metadata = importlib.import_module("tensorboard.plugins.hparams.metadata")
    api = importlib.import_module("tensorboard.plugins.hparams.api_pb2")
    experiment = api.Experiment(
        hparam_infos=[_hparam_info(api, name) for name in (*hparam_keys(), *SIZE_KEYS)],
        metric_infos=[api.MetricInfo(name=api.MetricName(tag=tag)) for tag in metric_tags],
    )
    start = metadata.plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparams.items():
        field = {bool: "bool_value", str: "string_value"}.get(type(value), "number_value")
        setattr(start.hparams[name], field, value)
    return [
        _summary(metadata, EXPERIMENT_TAG, experiment=experiment),
        _summary(metadata, SESSION_TAG, session_start_info=start),
    ]


def event_files(run_dir: Path) -> list[Path]:
    """The run directory's own TensorBoard event files (regular files or links, never folders)."""
    return sorted(p for p in run_dir.glob(EVENTS_GLOB) if p.is_symlink() or p.is_file())


def has_session(run_dir: Path) -> bool:
    """Whether an event file of ``run_dir`` holds an hparams session. A writer puts it before its first
    scalar, so each file is read only up to that."""
    loader = importlib.import_module("tensorboard.backend.event_processing.event_file_loader")
    for path in event_files(run_dir):
        if path.is_symlink():
            continue
        for event in loader.EventFileLoader(str(path)).Load():
            tags = [value.tag for value in event.summary.value]
            if SESSION_TAG in tags:
                return True
            if any(not tag.startswith(HPARAMS_PREFIX) for tag in tags):
                break
    return False
