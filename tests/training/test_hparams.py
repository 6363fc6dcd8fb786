"""TensorBoard hparams: each run directory holds one hparams session (the config keys a run is, its
model size) next to its scalars, read back the way the HParams tab reads them (its metrics: the scalar
tags the run logs); a resumed run keeps its one session, an overwritten run gets a new one."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, event_file_loader
from tensorboard.backend.event_processing import plugin_event_multiplexer as multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, metadata

from spatialmix_cli.config.train import RUNTIME_KEYS, TrainConfig
from spatialmix_cli.training.hparams import EVENTS_GLOB, hparams_of
from spatialmix_cli.training.loop import TrainingInterrupted, train

from conftest import tiny_config


def sessions(run: Path) -> list[dict]:
    """Every hparams session written in ``run``'s event files, as ``{name: value}``."""
    found = []
    for path in sorted(run.glob(EVENTS_GLOB)):
        for event in event_file_loader.EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == metadata.SESSION_START_INFO_TAG:
                    start = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
                    found.append({k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()})
    return found


def scalar_tags(run: Path) -> set[str]:
    mux = multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(run))
    mux.Reload()
    return set(mux.PluginRunToTagToContent("scalars")["."])


def experiment(logdir: Path) -> api_pb2.Experiment:
    """What the HParams tab shows for ``logdir`` (TensorBoard's own handler of its /experiment request)."""
    mux = multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    tb = base_plugin.TBContext(data_provider=provider, multiplexer=mux, logdir=str(logdir))
    request = api_pb2.GetExperimentRequest()
    return get_experiment.Handler(context.RequestContext(), backend_context.Context(tb), "", request).run()


def test_each_run_has_one_session_with_its_config_and_size(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=1, learn="chans", mixup=0.1, logger="tensorboard")
    result = train(cfg, tmp_path / "run")
    [found] = sessions(tmp_path / "run")
    for key in ("arch", "learn", "filters", "width", "depth", "kernel", "patch", "dataset", "seed", "lr"):
        assert key in found  # the core every run has
    assert found["learn"] == "chans" and found["width"] == cfg.width and found["lr"] == pytest.approx(cfg.lr)
    assert found["mixup"] == pytest.approx(0.1)  # not its default: a sweep's varying key
    assert "label_smoothing" not in found  # at its default and not an everyday option
    assert not RUNTIME_KEYS & set(found)  # logger, device, log_every... do not change what a run is
    assert found["image_size"] == "none"  # None, as TensorBoard takes it
    assert found["params_trainable"] == result.params_trainable


def test_hparams_values_are_what_tensorboard_takes() -> None:
    shown = hparams_of(TrainConfig.from_dict({"hflip": True}), {"params_trainable": 7, "by_type": {}})
    assert shown["hflip"] is True and shown["params_trainable"] == 7 and "by_type" not in shown
    assert "grad_clip" not in shown  # at its default
    assert all(isinstance(v, str | int | float | bool) for v in shown.values())


def test_the_hparams_tab_compares_chans_and_full_on_the_logged_scalars(tmp_path: Path) -> None:
    for learn in ("chans", "full"):
        train(tiny_config(epochs=1, learn=learn, logger="tensorboard"), tmp_path / learn)
    found = experiment(tmp_path)
    infos = {info.name: info for info in found.hparam_infos}
    assert sorted(infos["learn"].domain_discrete) == ["chans", "full"] and infos["learn"].differs
    assert infos["lr"].type == api_pb2.DATA_TYPE_FLOAT64 and not infos["arch"].differs
    assert found.hparam_infos[0].name in {"learn", "params_trainable"}  # what differs is listed first
    metrics = {(m.name.tag, m.name.group) for m in found.metric_infos}
    assert {("test/acc", ""), ("test/loss", ""), ("train/loss", ""), ("epoch/train_loss", "")} <= metrics
    logged = set().union(*(scalar_tags(tmp_path / learn) for learn in ("chans", "full")))
    assert metrics == {(tag, "") for tag in logged}  # the run directory's own scalars, no sub-run


@pytest.mark.slow  # fast: the one-session test
def test_a_resumed_run_keeps_its_one_session(tmp_path: Path) -> None:
    cfg, run = tiny_config(epochs=2, logger="tensorboard"), tmp_path / "run"
    calls = iter(range(100))
    with pytest.raises(TrainingInterrupted):
        train(cfg, run, should_stop=lambda: next(calls) == 5)  # stops after step 6
    train(cfg, run, resume=True)
    assert len(list(run.glob(EVENTS_GLOB))) == 2  # one file per process
    assert len(sessions(run)) == 1


def test_a_resumed_run_without_a_session_gets_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    calls = iter(range(100))
    with pytest.raises(TrainingInterrupted):
        train(tiny_config(epochs=2), run, should_stop=lambda: next(calls) == 5)  # logger none
    train(tiny_config(epochs=2, logger="tensorboard"), run, resume=True)
    assert len(sessions(run)) == 1


def test_an_overwritten_run_shows_only_its_new_session(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(epochs=1, logger="tensorboard"), run)
    train(tiny_config(epochs=1, lr=0.02, logger="tensorboard"), run, overwrite=True)
    assert [s["lr"] for s in sessions(run)] == [pytest.approx(0.02)]
    assert len(list(run.glob(EVENTS_GLOB))) == 1  # the old run's events are gone
