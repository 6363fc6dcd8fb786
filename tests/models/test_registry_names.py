"""The registries' names live in config (the CLI's checks, help and completion read them without torch);
each registry is keyed by exactly those names, so adding an entry on one side only fails here."""

from __future__ import annotations

import pytest

from spatialmix_cli.config import names
from spatialmix_cli.config.banks import BANK_NAMES, DRAWN_BANKS
from spatialmix_cli.data.info import DATASETS
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.layers.filter_banks import FILTER_BANKS
from spatialmix_cli.layers.learn import apply_learn_mode
from spatialmix_cli.models import create_model, list_models
from spatialmix_cli.training.tasks import make_task


def test_every_task_name_has_a_task() -> None:
    assert [make_task(name, image_size=8).name for name in names.TASKS] == list(names.TASKS)
    with pytest.raises(ConfigError, match="unknown task"):
        make_task("segment", image_size=8)


def _frozen(learn: str) -> int:
    model = create_model("convmixer", width=8, depth=1, kernel=3, patch=2)
    apply_learn_mode(model, learn)
    return sum(not p.requires_grad for p in model.parameters())


def test_every_learn_mode_applies() -> None:
    frozen = {learn: _frozen(learn) for learn in names.LEARN_MODES}
    assert frozen["full"] == 0 and all(n > 0 for learn, n in frozen.items() if learn != "full")
    with pytest.raises(ConfigError, match="unknown learn mode"):
        _frozen("half")


def test_dataset_table_has_the_config_names() -> None:
    assert tuple(DATASETS) == names.DATASET_NAMES
    assert names.STREAMED <= set(names.DATASET_NAMES)


def test_model_registry_has_the_config_names() -> None:
    assert list_models() == sorted(names.MODEL_NAMES)


def test_every_bank_has_a_builder() -> None:
    assert tuple(FILTER_BANKS) == BANK_NAMES
    assert DRAWN_BANKS == tuple(name for name, bank in FILTER_BANKS.items() if bank.build is not None)
