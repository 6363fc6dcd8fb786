"""Filter banks with parameters written as specs (``smooth:0.5``): parsing, the one canonical spelling, the
config key, and the error a record written before specs (``filters: smooth`` + ``smooth_sigma``) gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from spatialmix_cli.config.banks import BANKS, format_bank, parse_bank
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.errors import CheckpointError, ConfigError, RunDirError
from spatialmix_cli.layers.filter_banks import make_filter_bank
from spatialmix_cli.models import create_model
from spatialmix_cli.store.checkpoint import load_checkpoint, save_checkpoint
from spatialmix_cli.store.rundir import read_config

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


def test_the_spec_reaches_the_model_and_sets_its_bank() -> None:
    """``filters: smooth:0.5`` is the only way the config says σ; the model gets the spec."""
    cfg = tiny_config(filters="smooth:0.5", learn="chans")
    kwargs = cfg.model_kwargs(dataset_info(cfg.dataset))
    assert kwargs["filters"] == "smooth:0.5" and "smooth_sigma" not in kwargs
    create_model(cfg.arch, **kwargs)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    other = make_filter_bank("smooth:2", 4, 5, generator=g2)
    assert not torch.equal(make_filter_bank("smooth:0.5", 4, 5, generator=g1), other)


def test_smooth_sigma_is_no_longer_a_key_and_says_where_it_went() -> None:
    with pytest.raises(ConfigError, match=r"'smooth_sigma' is no longer a key: .*filters: smooth:0\.5"):
        TrainConfig.from_dict({"filters": "smooth", "smooth_sigma": 0.5})


def test_a_run_written_before_specs_is_refused_naming_its_file_and_the_fix(tmp_path: Path) -> None:
    """A config.yaml with ``filters: smooth`` + ``smooth_sigma: 0.5`` was written by an older version: one
    error line names the file and says how to write it today."""
    old = {**tiny_config().to_dict(), "filters": "smooth", "smooth_sigma": 0.5}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(RunDirError) as info:
        read_config(run)
    message = str(info.value)
    assert "\n" not in message and str(run / "config.yaml") in message and "older spatialmix" in message
    assert "'filters: smooth' + 'smooth_sigma: 0.5' is 'filters: smooth:0.5'" in message


def test_a_checkpoint_written_before_specs_is_refused_naming_its_file(tmp_path: Path) -> None:
    """Model arguments (or a config) in checkpoint metadata with ``smooth_sigma``: a CheckpointError that
    names the file and the key, not a failure to build the model."""
    cfg = tiny_config(filters="smooth:0.5")
    kwargs = cfg.model_kwargs(dataset_info(cfg.dataset))
    old = {**kwargs, "filters": "smooth", "smooth_sigma": 0.5}
    path = tmp_path / "m.safetensors"
    save_checkpoint(
        path, create_model(cfg.arch, **kwargs), {"kind": "model", "model": {"name": cfg.arch, "kwargs": old}}
    )
    with pytest.raises(
        CheckpointError, match=rf"{path}: 'smooth_sigma' in its model arguments: an older spatialmix"
    ):
        load_checkpoint(path)
