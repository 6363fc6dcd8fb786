"""Reliability, round three: timm models that cannot build or cannot run on the data, and pretrained
weights with no network (classes 2 and 3 of issue #31). Each is refused by the model check before anything
is written: exit 2, one ``error:`` line naming the argument (or the weights and what to do), no run folder.

Light: tiny timm models (resnet10t, mobilenetv3_small_050, vit_tiny built on the meta device), synthetic
data, nothing downloaded (conftest sets HF_HUB_OFFLINE=1; the Hugging Face cache is pointed at tmp_path).
Each case is a row of docs/reliability.md; keep the two in step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from spatialmix_cli import TrainConfig, create_model, load_checkpoint
from spatialmix_cli.models import timm_weights
from spatialmix_cli.models.check import check_model

timm = pytest.importorskip("timm")

_TINY = ["--dataset", "synthetic", "--set", "subset=32", "--set", "test_subset=32", "--batch-size", "32",
         "--epochs", "1", "--device", "cpu", "--logger", "none"]  # fmt: skip


def _listing(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def _refused(cli: Callable[..., Any], tmp_path: Path, args: list[str], *needles: str) -> str:
    """Exit 2, one ``error:`` line holding every needle, empty stdout, nothing on disk changed; the line."""
    before = _listing(tmp_path)
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0] and all(n in lines[0] for n in needles), lines[0]
    assert result.stdout == ""
    assert _listing(tmp_path) == before, "a refused command changed files on disk"
    return lines[0]


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache outside tmp_path's listing (a sibling folder), offline."""
    home = tmp_path.parent / f"{tmp_path.name}-hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    timm_weights.reachable.cache_clear()
    return home / "hub"


# (arch, arguments, what the line must name): a bad model.KEY value is named with its value, and the
# message is about that value, not about patch sizes or image sizes
BAD_ARGUMENTS = {
    "features-only": ("resnet10t", ["--set", "model.features_only=true"], "model.features_only=true"),
    "drop-rate-text": ("resnet10t", ["--set", "model.drop_rate=abc"], 'model.drop_rate="abc"'),
    "negative-depth": ("vit_tiny_patch16_224", ["--set", "model.depth=-1"], "model.depth=-1"),
    "heads-do-not-divide": ("vit_tiny_patch16_224", ["--set", "model.num_heads=5"], "model.num_heads=5"),
    "img-size-not-the-data's": ("vit_tiny_patch16_224", ["--set", "model.img_size=64"], "model.img_size=64"),
    "one-bad-of-two": (
        "resnet10t",
        ["--set", "model.drop_rate=0.1", "--set", "model.global_pool=xyz"],
        'model.global_pool="xyz"',
    ),
}


@pytest.mark.parametrize(("arch", "args", "named"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_a_timm_argument_that_does_not_work_is_named_before_anything_is_written(
    cli, tmp_path: Path, arch: str, args: list[str], named: str
) -> None:
    line = _refused(cli, tmp_path, ["train", "--arch", f"timm:{arch}", *_TINY, *args], f"'{arch}'", named)
    assert "smaller patch" not in line and "image_size" not in line, line
    assert "model.drop_rate=0.1" not in line  # the good one of two is not blamed


def test_features_only_says_the_model_gives_no_logits(cli, tmp_path: Path) -> None:
    line = _refused(
        cli, tmp_path, ["train", "--arch", "timm:resnet10t", *_TINY, "--set", "model.features_only=true"]
    )
    assert "not one logit per class (1, 10)" in line and "list" in line, line


@pytest.mark.parametrize("dataset", ["synthetic", "cifar10", "mnist"])
def test_a_fixed_size_vit_is_built_for_the_data_image_size(dataset: str) -> None:
    """timm is told the data's image size (img_size): a 224-px ViT runs on 32-px and 28-px images (it
    asserted 'Input height (32) doesn't match model (224)' mid-run before); checked on the meta device."""
    check_model(TrainConfig.from_dict({"arch": "timm:vit_tiny_patch16_224", "dataset": dataset}), "option")


def test_a_fixed_size_vit_trains_on_32px_images_and_its_checkpoint_rebuilds(cli, tmp_path: Path) -> None:
    result = cli("train", "--arch", "timm:vit_tiny_patch16_224", *_TINY, "--set", "model.depth=1",
                 "--out", tmp_path / "run", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert ckpt.meta["model"]["kwargs"]["image_size"] == 32
    assert tuple(ckpt.model.model.pos_embed.shape) == (1, 1 + (32 // 16) ** 2, 192)  # 2x2 patches + class
    assert ckpt.model.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_a_model_too_big_for_the_images_names_the_image_size(cli, tmp_path: Path) -> None:
    """A 16-px patch cannot cover 8-px images: the data's size is at fault, and the line says what to do."""
    _refused(
        cli,
        tmp_path,
        ["train", "--arch", "timm:vit_tiny_patch16_224", *_TINY, "--image-size", "8"],
        "cannot run on the 8x8 images of 'synthetic'",
        "--image-size",
    )


def test_a_size_agnostic_model_is_built_without_img_size() -> None:
    """A convnet takes no img_size: it is built without one, as before (no TypeError)."""
    model = create_model("timm:resnet10t", num_classes=10, image_size=32)
    assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def _train_pretrained(cli, tmp_path: Path) -> tuple[str, float]:
    started = time.monotonic()
    line = _refused(
        cli,
        tmp_path,
        ["train", "--arch", "timm:resnet10t", *_TINY, "--set", "pretrained=true"],
        "'resnet10t'",
    )
    return line, time.monotonic() - started


def test_pretrained_weights_offline_and_not_cached_fail_at_once_in_one_line(
    cli, tmp_path: Path, empty_hub_cache: Path
) -> None:
    """HF_HUB_OFFLINE=1, nothing cached: one line within seconds naming the weights, the cache, the switch
    and what to do (it was ~250 s of retries and ~22 lines of HTTP errors, and a run folder left behind)."""
    line, seconds = _train_pretrained(cli, tmp_path)
    assert seconds < 10, seconds
    for needle in ("timm/resnet10t", str(empty_hub_cache), "HF_HUB_OFFLINE", "network", "pretrained=true"):
        assert needle in line, line


def test_pretrained_weights_with_the_network_unreachable_fail_at_once(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not offline by the switch, but the Hub does not answer (a closed local port stands in for it): one
    probe with a short timeout, then one line; nothing is retried."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    line, seconds = _train_pretrained(cli, tmp_path)
    assert seconds < 10 + timm_weights.PROBE_SECONDS, seconds
    assert "127.0.0.1:9 cannot be reached" in line and "network" in line, line


def test_cached_pretrained_weights_load_without_the_network(
    empty_hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights in the Hugging Face cache load from there, offline and with no host to answer (the file is
    given to timm: no request, no retry)."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    source = timm.create_model("mobilenetv3_small_050", pretrained=False)
    snapshot = empty_hub_cache / "models--timm--mobilenetv3_small_050.lamb_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, snapshot / "model.safetensors")
    model = create_model("timm:mobilenetv3_small_050", num_classes=10, pretrained=True, filters="pretrained")
    assert torch.equal(model.model.conv_stem.weight, source.conv_stem.weight)
    assert model.model.get_classifier().out_features == 10  # the 1000-class head is left out, as timm does


@pytest.mark.parametrize(
    ("arch", "needle"),
    [
        ("convnext_atto_rms", "has no pretrained weights in timm"),
        ("resnet10t.nope", "no weights tagged 'nope'"),
    ],
)
def test_pretrained_weights_timm_does_not_have_are_refused(
    cli, tmp_path: Path, arch: str, needle: str
) -> None:
    """timm, asked for weights a model has none of, went on with random ones; an unknown tag failed mid-run."""
    _refused(cli, tmp_path, ["train", "--arch", f"timm:{arch}", *_TINY, "--set", "pretrained=true"], needle)
