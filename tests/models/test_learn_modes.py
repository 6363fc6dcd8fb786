"""After real training steps, frozen weights are bit-identical and trainable ones changed, for every
learn mode and model family; frozen weights get no gradient and are not given to the optimizer."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.layers import LEARN_MODES
from spatialmix_cli.layers.learn import BATCH_NORMS, NORMS, layer_type
from spatialmix_cli.models import create_model
from spatialmix_cli.training.loop import build_optimizer

FAMILIES = {
    "convmixer": dict(width=8, depth=2, kernel=3, patch=2),
    "sep_resnet": dict(depth=8, width=4),
    "sep_resnet_imagenet": dict(depth=10, width=4),
    "resnet": dict(depth=8, width=4),
    "resnet_imagenet": dict(depth=10, width=4),
}
ALL_BUT = lambda *kept: {"spatial", "channel", "dense", "norm", "head", "other"} - set(kept)  # noqa: E731
FROZEN = {
    "full": set(),
    "chans": {"spatial"},
    "space": {"channel"},
    "norm": ALL_BUT("norm", "head"),
    "head": ALL_BUT("head"),
}


def _cases():
    for name in FAMILIES:
        for learn in LEARN_MODES:
            if name.startswith("resnet") and learn in ("chans", "space"):
                continue  # dense ResNets have no separable convs: chans/space are errors (tested as such)
            yield name, learn


@pytest.mark.parametrize(("name", "learn"), list(_cases()))
def test_training_steps_change_exactly_the_trainable_weights(name: str, learn: str) -> None:
    model = create_model(name, learn=learn, in_chans=1, num_classes=4, **FAMILIES[name])
    size = 48 if "imagenet" in name else 16
    cfg = TrainConfig(lr=0.05, weight_decay=0.1)
    opt = build_optimizer(cfg, model)
    kinds = {id(p): layer_type(m) for m in model.modules() for p in m.parameters(recurse=False)}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    given = {id(p) for g in opt.param_groups for p in g["params"]}
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        x, y = torch.rand(8, 1, size, size, generator=g), torch.randint(0, 4, (8,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for n, p in model.named_parameters():
        kind = kinds[id(p)]
        if kind in FROZEN[learn]:
            assert torch.equal(p, before[n]), f"{n} ({kind}) changed in learn={learn}"
            assert p.grad is None and not p.requires_grad and id(p) not in given, n
        else:
            assert not torch.equal(p, before[n]), f"{n} ({kind}) did not change in learn={learn}"
            assert id(p) in given, n


def test_chans_freezes_convmixer_stem_and_depthwise_but_not_norms_or_head() -> None:
    model = create_model("convmixer", width=8, depth=2, learn="chans")
    assert not model.stem[0].weight.requires_grad and not model.stem[0].bias.requires_grad
    assert not model.blocks[0][0].fn[0].weight.requires_grad
    assert model.blocks[0][1].weight.requires_grad
    assert model.stem[2].weight.requires_grad and model.head.weight.requires_grad


def test_space_freezes_pointwise_and_resnet_shortcuts() -> None:
    model = create_model("sep_resnet", depth=8, width=4, learn="space")
    shortcut = model.layers[1].shortcut
    assert shortcut is not None and not shortcut.weight.requires_grad
    assert model.layers[1].conv1.spatial.weight.requires_grad


def test_the_norm_classes_are_every_torch_norm_with_running_statistics() -> None:
    """The library names torch's norms by public classes (their bases are private): every ``torch.nn``
    layer that can track running statistics, the batch norms among them, plus GroupNorm and LayerNorm."""
    layers = [c for c in vars(torch.nn).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)]
    running = {c for c in layers if "track_running_stats" in inspect.signature(c).parameters}
    assert set(BATCH_NORMS) == {c for c in running if "BatchNorm" in c.__name__}
    assert set(NORMS) == running | {torch.nn.GroupNorm, torch.nn.LayerNorm}
    assert layer_type(torch.nn.InstanceNorm2d(3, affine=True)) == "norm"
    assert layer_type(torch.nn.SyncBatchNorm(3)) == "norm"
