"""Every fast path computes what plain PyTorch computes (forward and gradients, within float tolerance):
the subsample-then-1x1 strided pointwise conv, channels_last models, the tuned allocator, and the batched
on-device crop + flip against torchvision's per-sample transforms."""

from __future__ import annotations

import copy
import platform

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from spatialmix_cli.data.augment import augment
from spatialmix_cli.layers import ChannelConv2d
from spatialmix_cli.models import create_model
from spatialmix_cli.training.allocator import tune_malloc, tune_malloc_from_env

TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("stride", "size"), [(1, 8), (2, 8), (2, 7), (3, 10)])
def test_strided_pointwise_matches_conv2d(stride: int, size: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    layer = ChannelConv2d(6, 10, stride=stride, bias=True)
    x = torch.randn(3, 6, size, size)
    if channels_last:
        layer = layer.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    # The reference: channels-first, PyTorch's own strided kernel, in float64. (In float32 that reference is
    # the flaky side: torch 2.14's CPU backward of a strided 1x1 conv gave a wrong weight gradient in about
    # 1 of 20 identical calls, measured 300 times; the float64 kernel and ChannelConv2d never did.)
    x_ref = x.detach().double().contiguous().requires_grad_(True)
    w_ref = layer.weight.detach().double().contiguous().requires_grad_(True)
    b_ref = layer.bias.detach().double().requires_grad_(True)
    out = layer(x)
    ref = F.conv2d(x_ref, w_ref, b_ref, stride=stride)
    torch.testing.assert_close(out, ref.float(), **TOL)
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)  # the layout carries on to the next layer
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad.double())
    torch.testing.assert_close(x.grad, x_ref.grad.float(), **TOL)
    torch.testing.assert_close(layer.weight.grad, w_ref.grad.float(), **TOL)
    torch.testing.assert_close(layer.bias.grad, b_ref.grad.float(), **TOL)


def _grads(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, dict, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, x.grad.detach()


@pytest.mark.parametrize(
    ("name", "kwargs", "learn"),
    [
        ("convmixer", dict(width=16, depth=2, kernel=5, patch=2), "full"),
        ("convmixer", dict(width=16, depth=2, kernel=8, patch=1), "chans"),  # even kernel, 'same' padding
        ("sep_resnet", dict(depth=8, width=4), "full"),  # strided depthwise + strided 1x1 shortcuts
        ("sep_resnet", dict(depth=8, width=4), "chans"),
        ("resnet", dict(depth=8, width=4), "full"),
    ],
)
def test_channels_last_model_matches_channels_first(name: str, kwargs: dict, learn: str) -> None:
    """The trainer's CPU layout: same loss, same parameter gradients (only the learned ones exist) and
    same input gradient (what the attacks use) as the channels-first model, in train mode (batch statistics)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, learn=learn, seed=0, **kwargs).train()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x, y = torch.rand(6, 3, 16, 16), torch.randint(0, 5, (6,))
    loss, grads, x_grad = _grads(model, x, y)
    fast_loss, fast_grads, fast_x_grad = _grads(fast, x.contiguous(memory_format=torch.channels_last), y)
    torch.testing.assert_close(fast_loss, loss, **TOL)
    assert grads.keys() == fast_grads.keys() and grads
    for key in grads:
        torch.testing.assert_close(fast_grads[key], grads[key], rtol=1e-3, atol=1e-5, msg=key)
    torch.testing.assert_close(fast_x_grad, x_grad, rtol=1e-3, atol=1e-6)


def test_tuned_allocator_changes_no_result() -> None:
    """The allocator setting is about speed only: the same step gives bit-identical numbers either way."""
    torch.manual_seed(0)
    model = create_model("convmixer", width=8, depth=1, kernel=3, patch=2, num_classes=3, seed=0)
    x, y = torch.rand(4, 3, 8, 8), torch.randint(0, 3, (4,))
    try:
        applied = tune_malloc(True)
        tuned = _grads(copy.deepcopy(model), x, y)
    finally:
        tune_malloc(False)
    plain = _grads(copy.deepcopy(model), x, y)
    assert torch.equal(tuned[0], plain[0]) and all(torch.equal(tuned[1][k], plain[1][k]) for k in plain[1])
    assert applied == (platform.libc_ver()[0] == "glibc")  # applied on glibc, a no-op elsewhere
    assert tune_malloc_from_env({"SPATIALMIX_MALLOC": "default"}) is False  # opt-out applies nothing


def test_batched_crop_flip_matches_torchvision_per_sample() -> None:
    """The trainer's on-device augmentation, given the offsets and flips it drew, equals torchvision's
    per-sample pad-4 crop and horizontal flip (the reference pipeline) image by image."""
    images = torch.randint(
        0, 256, (5, 3, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    out = augment(images, crop_pad=4, hflip=True, generator=torch.Generator().manual_seed(3))
    draws = torch.Generator().manual_seed(3)  # the same draws, in augment's documented order
    dy, dx = torch.randint(0, 9, (2, 5), generator=draws)
    flips = torch.rand(5, generator=draws) < 0.5
    assert out.dtype == torch.uint8 and out.shape == images.shape and 0 < int(flips.sum()) < 5
    for i in range(images.shape[0]):
        expected = v2.functional.crop(
            v2.functional.pad(images[i], [4], fill=0), int(dy[i]), int(dx[i]), 12, 12
        )
        if flips[i]:
            expected = v2.functional.horizontal_flip(expected)
        assert torch.equal(out[i], expected), i
