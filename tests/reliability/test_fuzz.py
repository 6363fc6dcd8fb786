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

from spatialmix_cli.config.recipes import RECIPE_KEYS, Recipe, load_recipe, parse_recipe
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.errors import CheckpointError, ConfigError
from spatialmix_cli.models import check_model, create_model, list_models
from spatialmix_cli.store.checkpoint import (
    build_model_from_meta,
    load_checkpoint,
    parse_metadata,
    tensor_shapes,
)
from spatialmix_cli.store.points import check_models

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
@pytest.mark.slow  # ~30 s of validated points; fast siblings: the fuzzed recipe files below, test_config_recipes
@given(data=st.one_of(recipes, values, st.dictionaries(st.sampled_from(RECIPE_KEYS), values, max_size=4)))
def test_fuzzed_recipe_mappings_give_a_recipe_or_a_config_error(data) -> None:
    try:
        recipe = parse_recipe(data, "fuzz.yaml")
        points = recipe.points()
        check_models(points)  # builds each point's model (parse_recipe does not): may refuse one too
    except ConfigError:
        return
    assert isinstance(recipe, Recipe)
    for point in points:
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


# --- paths: a file handed to the tool, or one it writes, may be anything but a regular file ------------
PATH_KINDS = ("regular", "missing", "folder", "fifo", "link-to-regular", "link-to-fifo", "link-out",
              "dangling-link", "link-loop", "long-name")  # fmt: skip


def _plant(folder: Path, kind: str, content: bytes, outside: Path, name: str = "f") -> Path:
    """Make ``folder/name`` be a ``kind`` of path (``outside``: a folder a link may point into)."""
    path = folder / ("n" * 300 if kind == "long-name" else name)  # 300 bytes: longer than a name may be
    if kind == "regular":
        path.write_bytes(content)
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-to-regular":
        (folder / ".real").write_bytes(content)
        path.symlink_to(folder / ".real")
    elif kind == "link-to-fifo":
        os.mkfifo(folder / ".pipe")
        path.symlink_to(folder / ".pipe")
    elif kind == "link-out":
        path.symlink_to(outside / "victim")
    elif kind == "dangling-link":
        path.symlink_to(folder / "nowhere")
    elif kind == "link-loop":
        path.symlink_to(path)
    return path


def _outside(tmp_path_factory) -> Path:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "victim").write_text("untouched")
    return outside


def _state(folder: Path) -> list[tuple[str, str]]:
    return sorted((p.name, p.read_text() if p.is_file() else "?") for p in folder.iterdir())


@FUZZ
@given(
    kind=st.sampled_from(PATH_KINDS), text=st.sampled_from(["base: {lr: 0.1}\n", "base: [", "", "\x00\xff"])
)
def test_fuzzed_recipe_paths_give_a_recipe_or_a_config_error_without_blocking(
    tmp_path_factory, kind: str, text: str
) -> None:
    outside = _outside(tmp_path_factory)
    path = _plant(tmp_path_factory.mktemp("recipe"), kind, text.encode("latin-1"), outside)
    try:
        assert isinstance(load_recipe(path), Recipe)
    except ConfigError:
        pass
    assert _state(outside) == [("victim", "untouched")]


@FUZZ
@given(kind=st.sampled_from(PATH_KINDS), valid=st.booleans(), cut=st.integers(0, 400))
def test_fuzzed_checkpoint_paths_give_a_model_or_a_checkpoint_error_without_blocking(
    tmp_path_factory, tensors, kind: str, valid: bool, cut: int
) -> None:
    from safetensors.torch import save

    meta = {"model": {"name": "convmixer", "kwargs": dict(TINY)}}
    content = save(tensors, metadata={"spatialmix": json.dumps(meta)})
    content = content if valid else content[:cut]
    path = _plant(tmp_path_factory.mktemp("ckpt"), kind, content, _outside(tmp_path_factory))
    try:
        load_checkpoint(path)
    except CheckpointError:
        pass


WRITERS = ("atomic_write_text", "append_lines", "open_lock", "write_below")


@FUZZ
@given(kind=st.sampled_from(PATH_KINDS), writer=st.sampled_from(WRITERS))
def test_fuzzed_write_targets_are_written_or_refused_and_nothing_outside_changes(
    tmp_path_factory, kind: str, writer: str
) -> None:
    from spatialmix_cli import safefiles as sf
    from spatialmix_cli.errors import SpatialmixError

    outside, out = _outside(tmp_path_factory), tmp_path_factory.mktemp("out")
    target = _plant(out, kind, b"old\n", outside)
    try:
        if writer == "atomic_write_text":
            sf.atomic_write_text(target, "new\n", root=out)
        elif writer == "append_lines":
            sf.append_lines(target, ['{"new": 1}'], root=out)
        elif writer == "open_lock":
            os.close(sf.open_lock(target, create=True))
        else:  # the planted path is a folder on the way to the file
            target = target / "x.png"
            sf.atomic_write_bytes(target, b"png", root=out)
    except SpatialmixError:
        pass  # refused (a link, not a regular file, outside) or a clean storage error
    except OSError:
        assert writer == "open_lock"  # the caller (runlock.claim) turns these into its own clean error
    else:
        assert target.is_file() and not target.is_symlink()
        assert target.resolve().is_relative_to(out.resolve())
    assert _state(outside) == [("victim", "untouched")]


rows = st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3)
jsonl_ops = st.lists(
    st.one_of(st.tuples(st.just("append"), st.lists(rows, min_size=1, max_size=3)),
              st.tuples(st.just("tear"), rows, st.floats(0.01, 0.99))),
    max_size=8,
)  # fmt: skip


@FUZZ
@given(ops=jsonl_ops)
def test_fuzzed_appends_and_torn_writes_keep_every_whole_line(tmp_path_factory, ops) -> None:
    from spatialmix_cli import safefiles as sf

    path = tmp_path_factory.mktemp("jsonl") / "attacks.jsonl"
    path.touch()
    appended, tears = [], 0
    for op in ops:
        if op[0] == "append":
            sf.append_lines(path, [json.dumps(r) for r in op[1]])
            appended += op[1]
        else:  # what a killed append leaves: its leading newline if one was due, then part of its line
            line = json.dumps(op[1])
            data = path.read_bytes()
            lead = "\n" if data and not data.endswith(b"\n") else ""
            with path.open("a") as f:
                f.write(lead + line[: max(1, int(len(line) * op[2]))])
            tears += 1
    found = sf.read_jsonl(path)
    assert found.rows == appended and len(found.bad) == tears


# --- checkpoint progress fields: what --resume reads to continue at the exact step ---------------------
progress_values = st.one_of(
    st.integers(-3, 10), st.sampled_from([2**63, 10**30]), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4), st.none(), st.booleans(), st.lists(st.integers(0, 3), max_size=2),
)  # fmt: skip
progress_fields = st.fixed_dictionaries(
    {},
    optional={
        "epoch": progress_values, "step": progress_values, "global_step": progress_values,
        "seconds": progress_values,
        "sums": st.one_of(progress_values, st.dictionaries(st.sampled_from(["loss", "score", "count", "x"]),
                                                             progress_values, max_size=4)),
        "history": progress_values,
    },
)  # fmt: skip


@FUZZ
@given(
    progress=progress_fields,
    history=st.one_of(st.just([]), progress_values, st.lists(progress_values, max_size=2)),
)
def test_fuzzed_progress_fields_give_a_resumable_state_or_a_checkpoint_error(progress, history) -> None:
    """Whatever ``progress`` / ``history`` a file holds, ``parse_metadata`` either refuses it or passes
    fields the trainer can use as they are: non-negative int counters, finite sums and seconds."""
    from spatialmix_cli.training.loop import Progress as _Progress

    meta = {"model": {"name": "convmixer", "kwargs": {}}, "progress": progress, "history": history}
    try:
        parsed = parse_metadata(json.dumps(meta, allow_nan=True))
    except CheckpointError:
        return
    state = _Progress(**{**parsed["progress"], "history": parsed["history"]})
    for counter in (state.epoch, state.step, state.global_step):
        assert isinstance(counter, int) and not isinstance(counter, bool) and counter >= 0
    assert float(state.seconds) >= 0 and all(isinstance(row, dict) for row in state.history)
    assert set(state.sums) == {"loss", "score", "count"} and all(v >= 0 for v in state.sums.values())


# --- sizes: every size a config may name is checked against memory before anything is allocated -------
sizes = st.fixed_dictionaries(
    {},
    optional={
        "width": st.one_of(st.integers(1, 64), st.sampled_from([4096, 65536])),
        "depth": st.one_of(st.integers(1, 4), st.just(64)),  # 4096 is valid but takes ~1 min on meta
        "kernel": st.one_of(st.integers(1, 9), st.sampled_from([63, 1024])),
        "patch": st.one_of(st.integers(1, 8), st.sampled_from([32, 64, 1024])),
        "subset": st.one_of(st.integers(1, 512), st.sampled_from([10**6, 10**9])),
        "test_subset": st.one_of(st.integers(1, 256), st.sampled_from([10**7, 10**9])),
        "image_size": st.one_of(st.integers(1, 64), st.sampled_from([512, 4096, 5000, 2**20])),
        "crop_pad": st.one_of(st.integers(0, 8), st.sampled_from([40, 10**6])),
        "batch_size": st.one_of(st.integers(1, 128), st.sampled_from([10**5, 10**9])),
    },
)  # fmt: skip


@pytest.mark.slow  # fast siblings: the refusals of test_memory.py
@settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 4))  # each example builds two models on meta
@given(data=sizes)
def test_fuzzed_sizes_are_refused_or_fit_the_budget_before_anything_is_allocated(data) -> None:
    """Any mix of sizes is a ConfigError (a range, a shape that cannot run, or a ResourceError with its
    estimate) or an estimate within the budget; all from shapes on the meta device, in milliseconds."""
    from spatialmix_cli.data.budget import Budget
    from spatialmix_cli.training.memory import training_estimate

    budget = Budget(256 << 20, "the test's 256 MiB")
    try:
        cfg = TrainConfig.from_dict({"dataset": "synthetic", "device": "cpu", **data})
        check_model(cfg)  # a shape that cannot run (config itself builds no model)
        estimate = training_estimate(cfg)
        estimate.check(budget)
    except ConfigError:
        return
    assert 0 < estimate.nbytes <= budget.nbytes
