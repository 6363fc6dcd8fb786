"""TensorBoard hparams of a run: what the HParams tab lists, filters and compares runs by.

Each run directory holds one hparams session in its own event files (next to its scalars, not in a
timestamped sub-run as ``SummaryWriter.add_hparams`` makes): the keys of what a run is that ``spatialmix
train --help`` lists, every other such key whose value is not its default (a sweep's varying keys), and
the model's parameter counts, as the values TensorBoard takes (``None`` is ``"none"``). No experiment
summary: TensorBoard reads only the first one it finds in a log directory, so one run's would hide the
keys of the others; without one it builds the columns from every run's session (a string key's values
as its discrete domain, the keys whose values differ first) and takes each scalar tag of a session's run
directory (``test/acc``, ``train/loss``, ...) as a metric, showing its last value. A blank cell is a key
at its default in that run.

TensorBoard's own ``hparams.summary`` imports TensorFlow; the session is built from its protos. The run's
event files are listed here too (to clear an overwritten run's, find a session, order a new file).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from ..config.keys import TRAIN, specs
from ..config.train import RUNTIME_KEYS, TrainConfig

EVENTS_GLOB = "events.out.tfevents.*"  # in the run directory: ``tensorboard --logdir runs/`` names each run
HPARAMS_PREFIX = "_hparams_/"  # tensorboard.plugins.hparams.metadata's tag names
SESSION_TAG = HPARAMS_PREFIX + "session_start_info"
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


def hparams_of(cfg: TrainConfig, params: dict[str, Any]) -> dict[str, HParam]:
    """A run's hparams: every key of what a run is (not a runtime key) that ``spatialmix train --help``
    lists (arch, learn, filters, the model's size keys, dataset, subset, epochs, batch size, lr, seed),
    then every other such key whose value is not its default, then the model's parameter counts
    (``params``: the trainer's parameter report)."""
    defaults, values = TrainConfig().to_dict(), cfg.to_dict()
    shown = {
        name: value
        for name, value in values.items()
        if name not in RUNTIME_KEYS and (TRAIN in specs(TrainConfig)[name].flags or value != defaults[name])
    }
    shown.update({key: params[key] for key in SIZE_KEYS if key in params})
    return {name: hparam_value(value) for name, value in shown.items()}


def session_summary(hparams: dict[str, HParam]) -> Any:
    """The run's hparams session, as the Summary proto the HParams tab reads."""
    metadata = importlib.import_module("tensorboard.plugins.hparams.metadata")
    start = metadata.plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparams.items():
        field = {bool: "bool_value", str: "string_value"}.get(type(value), "number_value")
        setattr(start.hparams[name], field, value)
    data = metadata.plugin_data_pb2.HParamsPluginData(session_start_info=start)
    summary = metadata.summary_pb2.Summary()
    summary.value.add(tag=SESSION_TAG, metadata=metadata.create_summary_metadata(data))
    return summary


def event_files(run_dir: Path) -> list[Path]:
    """The run directory's own TensorBoard event files (regular files or links, never folders)."""
    return sorted(p for p in run_dir.glob(EVENTS_GLOB) if p.is_symlink() or p.is_file())


def after_existing_files(run_dir: Path) -> None:
    """Wait (at most a second) until the clock is past the second the newest event file of ``run_dir`` was
    made in. TensorBoard reads a run's files in name order and a name starts with that second
    (``events.out.tfevents.SECONDS.host.pid.N``): a file made in the same second could sort before the
    older one (by pid, or N 10 after 9), and its steps would then be dropped as out of order."""
    seconds = [int(part) for p in event_files(run_dir) if (part := p.name.split(".")[3]).isdigit()]
    if seconds:
        time.sleep(max(0.0, max(seconds) + 1 - time.time()))


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
