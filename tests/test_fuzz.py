"""Fuzzing with hypothesis: random recipe files and random checkpoint metadata. The only outcomes allowed
are a valid result or the clean error of the CLI (a ConfigError / CheckpointError) — never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from spatialmix_cli.checkpoint import build_model_from_meta, load_checkpoint, parse_metadata, tensor_shapes
from spatialmix_cli.config import TrainConfig
from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.errors import CheckpointError, ConfigError
from spatialmix_cli.models import create_model, list_models
from spatialmix_cli.recipes import RECIPE_KEYS, Recipe, load_recipe, parse_recipe

# 150 examples per test in `make test`; SPATIALMIX_FUZZ_EXAMPLES=5000 for a deeper search.
FUZZ = settings(
    max_examples=int(os.environ.get("SPATIALMIX_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CONFIG_KEYS = sorted(TrainConfig.__dataclass_fields__)
# Small ints mostly (a recipe's points are each built on the meta device, so huge sweeps are slow),
# plus the edge values that break naive code.
ints = st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, 2**31, 2**63, -(2**64), 10**30]))
scalars = st.one_of(
    st.none(), st.booleans(), ints, st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["convmixer", "sep_resnet", "chans", "full", "smooth", "synthetic", "cpu", "1/255"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
config_dicts = st.dictionaries(
    st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=8)), values, max_size=5
)
sweeps = st.one_of(
    config_dicts,
    st.dictionaries(st.sampled_from(CONFIG_KEYS), st.lists(scalars, max_size=2), max_size=2),
    st.lists(st.dictionaries(st.sampled_from([*CONFIG_KEYS, "grid"]), values, max_size=3), max_size=2),
)
recipes = st.fixed_dictionaries(
    {},
    optional={
        "name": values,
        "out": st.one_of(st.text(max_size=10), values),
        "base": config_dicts,
        "sweep": sweeps,
        "attack": st.one_of(
            values,
            st.dictionaries(
                st.sampled_from(["method", "eps", "steps", "n", "alpha", "seed", "x"]), values, max_size=3
            ),
        ),
        "description": values,
    },  # fmt: skip
)


@FUZZ
@given(data=st.one_of(recipes, values, st.dictionaries(st.sampled_from(RECIPE_KEYS), values, max_size=4)))
def test_fuzzed_recipe_mappings_give_a_recipe_or_a_config_error(data) -> None:
    try:
        recipe = parse_recipe(data, "fuzz.yaml")
    except ConfigError:
        return
    assert isinstance(recipe, Recipe)
    for point in recipe.points():
        assert isinstance(point.config, TrainConfig)


yaml_fragments = st.sampled_from(
    [
        "base:",
        "sweep:",
        "attack:",
        "  lr: ",
        "  - ",
        "{",
        "}",
        "[",
        "]",
        ": ",
        "!!python/object:os.system",
        "&a ",
        "*a ",
        "2001-13-45",
        "0x1f",
        "1e999",
        ".nan",
        "~",
        "'",
        '"',
        "\n",
        "  ",
        "\t",
        "---",
        "%YAML 1.1",
        "learn: [full, chans]",
        "depth: 99999999999",
        "out: ../..",
        "name: /etc",
    ]  # fmt: skip
)


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.lists(yaml_fragments, max_size=20).map("".join)))
def test_fuzzed_recipe_files_give_a_recipe_or_a_config_error(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text(text)
    try:
        assert isinstance(load_recipe(path), Recipe)
    except ConfigError:
        pass


TINY = dict(width=8, depth=1, kernel=3, patch=4, seed=0)


@pytest.fixture(scope="module")
def tensors():
    model = create_model("convmixer", **TINY)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def _mostly(value):
    """``value`` three times in four, anything otherwise: mutants of a valid entry reach deeper code."""
    return st.one_of(st.just(value), st.just(value), st.just(value), values)


kwarg_names = st.sampled_from(["width", "depth", "kernel", "patch", "in_chans", "num_classes", "learn", "filters",
                               "smooth_sigma", "seed", "mean", "std", "depth_multiplier", "form", "bogus"])  # fmt: skip
metadata = st.one_of(
    values,
    st.fixed_dictionaries(
        {"model": st.one_of(values, st.fixed_dictionaries({
            "name": st.one_of(st.just("convmixer"), st.sampled_from(list_models()), values),
            "kwargs": st.one_of(st.dictionaries(kwarg_names, values, max_size=6),
                                st.just(dict(TINY)).flatmap(lambda d: st.fixed_dictionaries(
                                    {k: _mostly(v) for k, v in d.items()}))),
        }))},
        optional={"dataset": st.one_of(values, st.just(dataset_info("synthetic").to_dict()).flatmap(
                      lambda d: st.fixed_dictionaries({k: _mostly(v) for k, v in d.items()}))),
                  "config": values, "history": values, "progress": values, "optimizer": values},
    ),
)  # fmt: skip


@FUZZ
@given(meta=metadata)
def test_fuzzed_checkpoint_metadata_gives_a_model_or_a_checkpoint_error(
    tmp_path_factory, tensors, meta
) -> None:
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    raw = json.dumps(meta, allow_nan=True)
    save_file(tensors, str(path), metadata={"spatialmix": raw})
    try:
        parsed = parse_metadata(raw, path)
        build_model_from_meta(parsed, path, tensor_shapes(path))
        ckpt = load_checkpoint(path)
        if "dataset" in ckpt.meta:
            assert ckpt.info.in_chans >= 0
    except CheckpointError:
        pass


@FUZZ
@given(raw=st.one_of(st.text(max_size=100), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_fuzzed_metadata_text_gives_metadata_or_a_checkpoint_error(raw: str) -> None:
    try:
        assert isinstance(parse_metadata(raw, Path("x.safetensors")), dict)
    except CheckpointError:
        pass
