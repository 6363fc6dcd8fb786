"""The two controls below ``chans`` (issue 33): ``norm`` trains only normalisation layers' affine parameters
and the classifier, ``head`` only the classifier (for un-shuffling models the final 1x1 projection). What
they must train is computed here from module types and weight shapes (torch's norm classes, timm's
``get_classifier()``, the last Linear), independently of the role tags the library freezes by."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spatialmix_cli import adapt_model, create_model, load_checkpoint, param_report, train
from spatialmix_cli.config.names import LEARN_MODES
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.training.loop import build_optimizer

from conftest import tiny_config

NORM_TYPES = (
    nn.BatchNorm2d,
    nn.LayerNorm,
    nn.GroupNorm,
)  # every norm these models use (timm's subclass them)
OWN = {
    "convmixer": dict(width=8, depth=2, kernel=3, patch=2, num_classes=4),
    "sep_resnet": dict(depth=8, width=4, num_classes=4),
    "resnet": dict(depth=8, width=4, num_classes=4),
    "sep_resnet_imagenet": dict(depth=10, width=4, num_classes=4),
    "mlp_mixer": dict(width=16, depth=2, patch=4, image_size=16, num_classes=4),
    "convmixer_unshuffle": dict(width=8, depth=2, kernel=3),
}


def expected_trainable(model: nn.Module, head: nn.Module, learn: str) -> set[str]:
    """Names of the parameters ``learn`` must train: the head's, plus (norm) every norm layer's."""
    ids = {id(p) for p in head.parameters()}
    if learn == "norm":
        ids |= {id(p) for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def own_head(model: nn.Module) -> nn.Module:
    """The classifier: the last Linear, or for the un-shuffle model its last conv (a 1x1 to the pixels)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    assert last.kernel_size == (1, 1) and last.out_channels == 1
    return last


def trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_the_ladder_is_the_learn_modes_order() -> None:
    assert LEARN_MODES[:4] == ("head", "norm", "chans", "full")


@pytest.mark.parametrize("learn", ["norm", "head"])
@pytest.mark.parametrize("name", list(OWN))
def test_own_models_train_exactly_norms_and_head(name: str, learn: str) -> None:
    model = create_model(name, learn=learn, in_chans=1, **OWN[name])
    want = expected_trainable(model, own_head(model), learn)
    assert trainable(model) == want and want
    report = param_report(model)
    assert report["params_trainable"] == sum(p.numel() for n, p in model.named_parameters() if n in want)
    assert set(report["by_type"]) >= {"head", "norm"}
    assert report["by_type"]["norm"]["trainable" if learn == "norm" else "frozen"] > 0


TIMM = [("mobilenetv3_small_050", {}, 64), ("convnext_atto", {}, 64), ("mixer_s16_224", {}, 64)]


@pytest.mark.parametrize("learn", ["norm", "head"])
@pytest.mark.parametrize(("name", "args", "size"), TIMM, ids=[t[0] for t in TIMM])
def test_timm_families_train_exactly_norms_and_head(name: str, args: dict, size: int, learn: str) -> None:
    pytest.importorskip("timm")
    with torch.device("meta"):
        model = create_model(
            f"timm:{name}",
            in_chans=3,
            num_classes=10,
            learn=learn,
            model_args={"img_size": size} if "mixer" in name else args,
        )
    head = model.model.get_classifier()
    want = expected_trainable(model, head, learn)
    assert trainable(model) == want and want
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any(".blocks." in n or "blocks." in n or "stages." in n for n in frozen)


def test_adapt_model_norm_and_head_on_a_plain_module() -> None:
    def net() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 3, 3, groups=3, padding=1), nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
        )  # fmt: skip

    for learn, want in (
        ("head", {"6.weight", "6.bias"}),
        ("norm", {"2.weight", "2.bias", "6.weight", "6.bias"}),
    ):
        assert trainable(adapt_model(net(), learn=learn)) == want


def test_norm_refuses_a_model_without_norm_layers() -> None:
    bare = nn.Sequential(nn.Conv2d(3, 3, 3, groups=3), nn.Flatten(), nn.Linear(3 * 30 * 30, 2))
    with pytest.raises(ConfigError, match="learn mode 'norm' trains normalisation layers"):
        adapt_model(bare, learn="norm")


@pytest.mark.parametrize("learn", ["norm", "head"])
@pytest.mark.parametrize("name", ["convmixer", "mlp_mixer"])
def test_adamw_steps_leave_frozen_weights_bit_identical(name: str, learn: str) -> None:
    kwargs = {k: v for k, v in OWN[name].items() if k != "num_classes"}
    model = create_model(name, learn=learn, in_chans=1, num_classes=4, **kwargs)
    opt = build_optimizer(tiny_config(lr=0.05, weight_decay=0.1), model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y = torch.rand(8, 1, 16, 16, generator=g), torch.randint(0, 4, (8,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    learned = trainable(model)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) != (n in learned), n  # frozen: identical; trained: moved


@pytest.mark.parametrize(("arch", "learn"), [("convmixer", "norm"), ("mlp_mixer", "head")])
def test_checkpoints_round_trip_the_frozen_set(tmp_path: Path, arch: str, learn: str) -> None:
    sizes = dict(width=16, depth=2, patch=4, kernel=3 if arch == "convmixer" else None)
    train(tiny_config(arch=arch, learn=learn, epochs=1, **sizes), tmp_path / learn)
    ckpt = load_checkpoint(tmp_path / learn / "model.safetensors")
    extra = {"image_size": 32} if arch == "mlp_mixer" else {}  # the synthetic data's size
    fresh = create_model(arch, learn=learn, in_chans=3, num_classes=10, **sizes, **extra)  # None: dropped
    assert trainable(ckpt.model) == trainable(fresh)
    frozen = [n for n, p in fresh.named_parameters() if not p.requires_grad]
    state = ckpt.model.state_dict()
    assert frozen and all(torch.equal(state[n], fresh.state_dict()[n]) for n in frozen)  # still at init
