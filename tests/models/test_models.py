"""Every registered model builds, runs, normalises inside, and its parameter counts match the paper's
formulas: p_conv = c_in·c_out·k², p_sep = c_in·k²·d + c_in·d·c_out."""

from __future__ import annotations

import pytest
import torch

from spatialmix_cli.config.names import IMAGE_SIZED_MODELS
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.layers import param_report
from spatialmix_cli.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name: str) -> None:
    imagenet = "imagenet" in name or name.endswith("_p7")
    size = 64 if imagenet else 32
    pixels = name == "convmixer_unshuffle"  # outputs an image, not class scores
    kwargs = {"in_chans": 3} if pixels else {"in_chans": 3, "num_classes": 7}
    if name in IMAGE_SIZED_MODELS:  # its token MLPs are sized to the images
        kwargs["image_size"] = size
    with torch.device("meta"):  # shapes only: the big presets would not fit a test's time budget
        model = create_model(name, **kwargs)
        out = model(torch.empty(2, 3, size, size))
    assert out.shape == ((2, 3, size, size) if pixels else (2, 7))


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [
        ("convmixer", dict(width=16, depth=2, kernel=5, patch=2), 28),
        ("sep_resnet", dict(depth=8, width=4), 28),
        ("resnet", dict(depth=8, width=4), 28),
        ("sep_resnet_imagenet", dict(depth=10, width=4), 48),
        ("resnet_imagenet", dict(depth=10, width=4), 48),
        ("mlp_mixer", dict(width=16, depth=2, patch=4, image_size=28), 28),
    ],
)
def test_small_models_forward_on_cpu(name: str, kwargs: dict, size: int) -> None:
    model = create_model(name, in_chans=1, num_classes=10, **kwargs).eval()
    assert model(torch.rand(3, 1, size, size)).shape == (3, 10)


def test_unknown_model_and_kwargs_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'convmixer'"):
        create_model("convmixr")
    with pytest.raises(ConfigError, match="takes no argument 'widht'.*did you mean 'width'"):
        create_model("convmixer", widht=3)
    with pytest.raises(ConfigError, match="fixes width=256"):
        create_model("convmixer_256_8_k5_p2", width=64)
    with pytest.raises(ConfigError, match="6n\\+2"):
        create_model("sep_resnet", depth=21)
    with pytest.raises(ConfigError, match="no separable convolutions"):
        create_model("resnet", learn="chans")


def test_none_kwargs_keep_defaults_and_preset_names_spell_settings() -> None:
    model = create_model("convmixer_128_8_k8_p1", width=None)
    stem = model.stem[0]
    assert stem.out_channels == 128 and stem.kernel_size == (1, 1)
    assert len(model.blocks) == 8
    assert model.blocks[0][0].fn[0].kernel_size == (8, 8)


def test_normalisation_lives_inside_the_model() -> None:
    model = create_model("convmixer", width=8, depth=1, in_chans=1, mean=[0.5], std=[0.25]).eval()
    x = torch.rand(2, 1, 16, 16)
    assert torch.allclose(model.normalize(x), (x - 0.5) / 0.25)


def test_same_seed_builds_the_same_model_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = create_model("sep_resnet", depth=8, width=4, seed=3)
    b = create_model("sep_resnet", depth=8, width=4, seed=3)
    c = create_model("sep_resnet", depth=8, width=4, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def _sep_resnet_expected(c_in: int, width: int, n: int, k: int, d: int, stages: int = 3) -> dict[str, int]:
    """Counts from the formulas, walking the architecture as the paper describes it."""
    spatial = channel = 0
    convs = [(c_in, width)]  # stem
    shortcuts = []
    prev = width
    for stage in range(stages):
        out = width * 2**stage
        for block in range(n):
            convs += [(prev, out), (out, out)]
            if prev != out or (stage > 0 and block == 0):
                shortcuts.append((prev, out))
            prev = out
    for ci, co in convs:
        spatial += ci * k * k * d  # depthwise
        channel += ci * d * co  # pointwise
    channel += sum(ci * co for ci, co in shortcuts)
    return {"spatial": spatial, "channel": channel, "dense": sum(ci * co * k * k for ci, co in convs)}


@pytest.mark.parametrize(("n", "k", "d", "width"), [(1, 3, 9, 4), (2, 5, 3, 8), (1, 7, 1, 6)])
def test_separable_resnet_counts_match_formulas(n: int, k: int, d: int, width: int) -> None:
    expected = _sep_resnet_expected(3, width, n, k, d)
    sep = param_report(create_model("sep_resnet", depth=6 * n + 2, width=width, kernel=k, depth_multiplier=d))
    assert sep["by_type"]["spatial"]["trainable"] == expected["spatial"]
    assert sep["by_type"]["channel"]["trainable"] == expected["channel"]
    dense = param_report(create_model("resnet", depth=6 * n + 2, width=width, kernel=k))
    assert dense["by_type"]["dense"]["trainable"] == expected["dense"]


def test_imagenet_form_has_8n_plus_2_layers() -> None:
    model = create_model("sep_resnet_imagenet", depth=18, width=4)
    separable = [m for m in model.modules() if type(m).__name__ == "SeparableConv2d"]
    assert len(separable) + 1 == 18  # 16 block convs + stem, + the head = 8n+2 = 18 layers
    expected = _sep_resnet_expected(3, 4, 2, 3, 9, stages=4)
    report = param_report(model)
    stem_extra = 3 * 9 * (7 * 7 - 3 * 3)  # the ImageNet stem is 7×7, not k×k
    assert report["by_type"]["spatial"]["trainable"] == expected["spatial"] + stem_extra


def test_convmixer_counts_match_formulas() -> None:
    h, depth, k, p, c, classes = 24, 3, 5, 2, 3, 10
    report = param_report(
        create_model("convmixer", width=h, depth=depth, kernel=k, patch=p, in_chans=c, num_classes=classes)
    )
    by = report["by_type"]
    assert by["spatial"]["trainable"] == (c * h * p * p + h) + depth * (
        h * k * k + h
    )  # stem + depthwise (+ biases)
    assert by["channel"]["trainable"] == depth * (h * h + h)
    assert by["norm"]["trainable"] == 2 * h * (1 + 2 * depth)
    assert by["head"]["trainable"] == h * classes + classes


@pytest.mark.parametrize("name", ["convmixer", "sep_resnet"])
def test_chans_trainable_count_does_not_change_with_kernel(name: str) -> None:
    counts = {
        k: param_report(
            create_model(name, kernel=k, learn="chans", width=8, depth=8 if name == "sep_resnet" else 2)
        )
        for k in (3, 5, 7)
    }
    trainable = {k: r["params_trainable"] for k, r in counts.items()}
    frozen = {k: r["params_frozen"] for k, r in counts.items()}
    assert len(set(trainable.values())) == 1, trainable
    assert frozen[3] < frozen[5] < frozen[7]


def test_convmixer_768_32_uses_relu_as_in_the_convmixer_paper_and_timm() -> None:
    """timm's ``convmixer_768_32`` (and the ConvMixer paper's 768/32 model) use ReLU; every other preset GELU."""
    with torch.device("meta"):
        relu = create_model("convmixer_768_32_k7_p7", num_classes=10)
        gelu = create_model("convmixer_1536_20_k9_p7", num_classes=10)
    acts = lambda m: {type(x) for x in m.modules() if isinstance(x, (torch.nn.ReLU, torch.nn.GELU))}  # noqa: E731
    assert acts(relu) == {torch.nn.ReLU}
    assert acts(gelu) == {torch.nn.GELU}
    assert acts(create_model("convmixer", width=8, depth=1, activation="relu")) == {torch.nn.ReLU}
    assert acts(create_model("convmixer_unshuffle", width=8, depth=1, activation="relu")) == {torch.nn.ReLU}
    with pytest.raises(ConfigError, match="fixes activation=relu"):
        create_model("convmixer_768_32_k7_p7", activation="gelu")
    with pytest.raises(ConfigError, match="activation"):
        create_model("convmixer", activation="swish")


@pytest.mark.parametrize("name", ["sep_resnet_imagenet", "resnet_imagenet"])
def test_imagenet_resnet_stem_is_conv_bn_relu_maxpool(name: str) -> None:
    """He et al. 2016 / fb.resnet.torch: conv 7×7/2 → BN → ReLU → 3×3/2 max-pool (no max-pool of raw conv
    outputs)."""
    model = create_model(name, depth=10, width=4, in_chans=3, num_classes=10)
    kinds = [type(m).__name__ for m in model.stem]
    assert kinds[1:] == ["BatchNorm2d", "ReLU", "MaxPool2d"]
    first = model.stem[0]
    conv = first.spatial if name.startswith("sep") else first
    assert conv.kernel_size == (7, 7) and conv.stride == (2, 2)
    assert model.stem[1].num_features == 4
