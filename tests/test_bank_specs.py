"""Filter banks with parameters written as specs (``smooth:0.5``): parsing, the one canonical spelling, the
config key, and records written before specs (``filters: smooth`` + ``smooth_sigma``) read the same."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from spatialmix_cli.config.banks import BANKS, format_bank, parse_bank
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.errors import ConfigError, RunDirError
from spatialmix_cli.layers.filter_banks import make_filter_bank
from spatialmix_cli.models import create_model
from spatialmix_cli.store.rundir import check_run_dir, read_config

from conftest import tiny_config


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("smooth", "smooth"), ("smooth:1.0", "smooth"), ("smooth:1", "smooth"), ("smooth:0.5", "smooth:0.5"),
     ("smooth:sigma=2", "smooth:2"), ("random", "random"), ("identity", "identity")],
)  # fmt: skip
def test_a_spec_has_one_spelling(text: str, canonical: str) -> None:
    assert format_bank(text) == canonical
    assert format_bank(parse_bank(canonical)) == canonical  # round trip
    assert TrainConfig.from_dict({"filters": text}).filters == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [("smoth", "did you mean 'smooth'"), ("smooth:0", "smooth:σ must be in"), ("random:2", "takes no parameters"),
     ("smooth:abc", "must be a number"), ("smooth:1:2", "smooth")],
)  # fmt: skip
def test_a_bad_spec_is_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.from_dict({"filters": text})
    assert str(info.value).startswith("config.filters")


def test_every_bank_parameter_has_a_default_that_parses() -> None:
    for name, params in BANKS.items():
        assert format_bank(name) == name
        assert parse_bank(name).params == {k: p.default for k, p in params.items()}


def test_the_spec_reaches_the_model_and_builds_the_same_bank_as_sigma_did() -> None:
    """``filters: smooth:0.5`` is the only way the config says σ; the model gets the spec, and its bank is
    the one the earlier ``filters=smooth, smooth_sigma=0.5`` arguments built (kept for old checkpoints)."""
    cfg = tiny_config(filters="smooth:0.5", learn="chans")
    kwargs = cfg.model_kwargs(dataset_info(cfg.dataset))
    assert kwargs["filters"] == "smooth:0.5" and "smooth_sigma" not in kwargs
    new = create_model(cfg.arch, **kwargs).state_dict()
    legacy = create_model(cfg.arch, **{**kwargs, "filters": "smooth", "smooth_sigma": 0.5}).state_dict()
    assert new.keys() == legacy.keys() and all(torch.equal(new[k], legacy[k]) for k in new)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    other = make_filter_bank("smooth:2", 4, 5, generator=g2)
    assert not torch.equal(make_filter_bank("smooth:0.5", 4, 5, generator=g1), other)


def test_smooth_sigma_is_no_longer_a_key_and_says_where_it_went() -> None:
    with pytest.raises(ConfigError, match=r"'smooth_sigma' is no longer a key: .*filters: smooth:0\.5"):
        TrainConfig.from_dict({"filters": "smooth", "smooth_sigma": 0.5})


@pytest.mark.parametrize(
    ("stored", "filters"),
    [({"filters": "smooth", "smooth_sigma": 0.5}, "smooth:0.5"), ({"filters": "smooth", "smooth_sigma": 1.0}, "smooth"),
     ({"filters": "random", "smooth_sigma": 0.5}, "random"), ({"filters": "box"}, "box")],
)  # fmt: skip
def test_a_config_written_before_specs_reads_as_its_spec(stored: dict, filters: str) -> None:
    assert TrainConfig.from_stored(stored).filters == filters


def test_a_finished_run_written_before_specs_is_the_same_run(tmp_path: Path) -> None:
    """A run directory whose config.yaml has ``filters: smooth`` + ``smooth_sigma: 0.5`` is the point
    ``filters: smooth:0.5`` of today's recipe: finished, not trained again, not refused as a different run."""
    cfg = tiny_config(filters="smooth:0.5")
    old = {**cfg.to_dict(), "filters": "smooth", "smooth_sigma": 0.5}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    assert read_config(run) == cfg
    (run / "result.json").write_text("{}")
    (run / "model.safetensors").write_bytes(b"")
    assert check_run_dir(run, cfg, resume=False, overwrite=False) == "finished"
    with pytest.raises(RunDirError, match="another config .filters: 'smooth:0.5' -> 'smooth:2'"):
        check_run_dir(run, tiny_config(filters="smooth:2"), resume=False, overwrite=False)
