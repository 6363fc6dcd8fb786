"""Metric sinks fed from the trainer's :class:`~training_state.Callbacks` hooks: TensorBoard scalars in each
run directory (the default: ``RUN/events.out.tfevents.*``), and Weights & Biases or MLflow when those are installed.

The config key ``logger`` (a runtime key: it does not change what a run is) names them, as a comma list, or
``none``. A sink whose package is missing is one :class:`ConfigError` naming the ``pip install`` that fixes
it, raised before the run directory is touched. Only rank 0 gets a logger (the trainer's rule for every
callback). A resumed run appends: each writer purges the events after the step it starts from (those a
killed process logged after its last save), so the curves join without overlap; a run that starts from
step 0 first removes the event files already there (an overwritten run's).

TensorBoard also gets the run's hparams (:mod:`.hparams`): one session per run directory, written when
the run starts from step 0 (or when a resumed run's files have none), so the HParams tab lists each run
with its config and the last value of each scalar (``test/acc``, ``train/loss``, ...) as its metrics.
"""

from __future__ import annotations

import importlib
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ..config.train import TrainConfig, logger_names
from ..errors import ConfigError
from .callbacks import Callbacks
from .hparams import after_existing_files, event_files, has_session, hparams_of, session_summary

PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}  # what pip installs
MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb", "mlflow": "mlflow"}  # what a sink uses
STEP_METRICS = ("train_loss", "train_acc", "train_psnr", "lr", "images_per_s")  # train/loss, train/acc, ...
EPOCH_METRICS = ("train_loss", "train_acc", "train_psnr", "lr", "images_per_s")  # epoch/train_loss, ...
TEST_METRICS = ("acc", "psnr", "loss")  # test/acc, ...: the record's test_acc, ...


class Sink(Protocol):
    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    def __init__(self, tensorboard: ModuleType, run_dir: Path, done_steps: int, session: Any) -> None:
        """``session``: the run's hparams (:func:`hparams.session_summary`)."""
        if done_steps == 0:  # a new (or overwritten) run: no earlier curves or hparams session may linger
            for path in event_files(run_dir):
                path.unlink(missing_ok=True)
        write_session = done_steps == 0 or not has_session(run_dir)
        after_existing_files(run_dir)  # this writer's file must sort after them
        # Earlier events after the step this process starts from (a killed process's steps after its last
        # save) are dropped when TensorBoard reads them.
        self.writer = tensorboard.SummaryWriter(str(run_dir), purge_step=done_steps + 1)
        if write_session:  # at step 0, which no resume purges: TensorBoard keeps a tag's first session
            self.writer.file_writer.add_summary(session)
            self.writer.flush()

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """One W&B run per run directory (its id is derived from the directory, so a resume continues it)."""

    def __init__(self, wandb: ModuleType, run_dir: Path, cfg: TrainConfig) -> None:
        run_id = f"{run_dir.name[:40]}-{zlib.crc32(str(run_dir.resolve()).encode()):08x}"
        self.run = wandb.init(
            project="spatialmix",
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=cfg.to_dict(),
        )

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowSink:
    """One MLflow run per training process, named after the run directory, with the config as params."""

    def __init__(self, mlflow: ModuleType, run_dir: Path, cfg: TrainConfig) -> None:
        self.mlflow = mlflow
        mlflow.start_run(run_name=run_dir.name)
        mlflow.log_params({k: str(v) for k, v in cfg.to_dict().items()})

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(values, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def import_sinks(names: tuple[str, ...]) -> dict[str, ModuleType]:
    """The module each sink of ``names`` writes with, imported here and only here: they are optional
    packages (and TensorBoard's writer is slow to import), needed only when ``--logger`` names them. One
    clear error for the first that cannot be imported."""
    modules = {}
    for name in names:
        try:
            modules[name] = importlib.import_module(MODULES[name])
        except ImportError:
            raise ConfigError(
                f"--logger {name} needs the {PACKAGES[name]} package: pip install {PACKAGES[name]} "
                f"(or choose another logger, e.g. --logger none)"
            ) from None
    return modules


class MetricLogger(Callbacks):
    """Writes the trainer's logged steps (``train/*``) and epoch records (``epoch/*``, ``test/*``) to each
    sink, against the global step."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.names = logger_names(cfg.logger)
        self.modules = import_sinks(self.names)
        self.sinks: list[Sink] = []

    def on_start(self, *, run_dir: Path, total_steps: int, done_steps: int, params: dict[str, Any]) -> None:
        self.close()
        build = {
            "tensorboard": lambda module: TensorBoardSink(
                module, run_dir, done_steps, session_summary(hparams_of(self.cfg, params))
            ),
            "wandb": lambda module: WandbSink(module, run_dir, self.cfg),
            "mlflow": lambda module: MlflowSink(module, run_dir, self.cfg),
        }
        self.sinks = [build[name](self.modules[name]) for name in self.names]

    def on_step(self, *, global_step: int, epoch: int, metrics: dict[str, float] | None) -> None:
        if metrics is None:
            return
        self.write(
            {f"train/{k.removeprefix('train_')}": metrics[k] for k in STEP_METRICS if k in metrics},
            global_step,
        )

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        values = {f"epoch/{k}": record.get(k) for k in EPOCH_METRICS}
        values.update({f"test/{k}": record.get(f"test_{k}") for k in TEST_METRICS})
        self.write({k: v for k, v in values.items() if v is not None}, record["step"])

    def write(self, values: dict[str, float], step: int) -> None:
        for sink in self.sinks:
            sink.scalars(values, step)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []


class Fanout(Callbacks):
    """Every hook goes to each of ``targets`` in order; ``close`` closes only the ``owned`` ones."""

    def __init__(self, targets: list[Callbacks], owned: list[Callbacks]) -> None:
        self.targets, self.owned = targets, owned

    def on_start(self, **kwargs: Any) -> None:  # type: ignore[override]
        for target in self.targets:
            target.on_start(**kwargs)

    def on_step(self, **kwargs: Any) -> None:  # type: ignore[override]
        for target in self.targets:
            target.on_step(**kwargs)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        for target in self.targets:
            target.on_epoch_end(record)

    def on_note(self, text: str) -> None:
        for target in self.targets:
            target.on_note(text)

    def close(self) -> None:
        for target in self.owned:
            target.close()


def with_loggers(callbacks: Callbacks | None, cfg: TrainConfig) -> Callbacks:
    """The caller's ``callbacks`` plus the metric loggers ``cfg.logger`` names (checked installed here)."""
    logger = MetricLogger(cfg)
    if not logger.names:
        return callbacks or Callbacks()
    return Fanout([callbacks or Callbacks(), logger], owned=[logger])
