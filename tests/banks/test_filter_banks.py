"""Each filter bank has its defining property, and banks are reproducible from the seed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spatialmix_cli.config.banks import DRAWN_BANKS
from spatialmix_cli.layers import DepthwiseConv2d, make_filter_bank
from spatialmix_cli.models import create_model


def bank(
    kind: str, channels: int = 6, kernel: int = 5, d: int = 3, seed: int = 0, sigma: float = 1.0
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    spec = f"{kind}:{sigma}" if kind == "smooth" else kind
    return make_filter_bank(spec, channels, kernel, depth_multiplier=d, generator=g)


def high_freq_share(filters: torch.Tensor, pad: int = 64) -> float:
    """Share of spectral energy above half the Nyquist radius, over all filters."""
    spec = torch.fft.fftshift(torch.fft.fft2(filters[:, 0], s=(pad, pad)), dim=(-2, -1)).abs() ** 2
    f = torch.fft.fftshift(torch.fft.fftfreq(pad))
    radius = (f.view(-1, 1) ** 2 + f.view(1, -1) ** 2).sqrt()
    return (spec[:, radius > 0.25].sum() / spec.sum()).item()


@pytest.mark.parametrize("kind", DRAWN_BANKS)  # "pretrained" draws nothing: keeps the weights
def test_shape(kind: str) -> None:
    assert bank(kind).shape == (6 * 3, 1, 5, 5)


def test_random_is_independent_per_channel_with_default_init_range() -> None:
    w = bank("random", kernel=5)
    assert w.abs().max() <= 1 / 5
    per_channel = w.view(6, 3, 25)
    assert not torch.equal(per_channel[0], per_channel[1])


def test_same_is_identical_across_channels_but_not_within_a_bank() -> None:
    w = bank("same").view(6, 3, 5, 5)  # (input channel, j-th filter of its group, k, k)
    for c in range(1, 6):
        assert torch.equal(w[c], w[0])
    assert not torch.equal(w[0, 0], w[0, 1])


def test_identity_is_a_centred_delta_and_maps_input_to_itself() -> None:
    for k in (3, 5, 8):  # even kernels too: PyTorch's 'same' padding is asymmetric
        w = bank("identity", kernel=k, d=1)
        assert w.sum().item() == 6 and (w == 1).sum().item() == 6
        conv = DepthwiseConv2d(6, k, bias=False)
        conv.weight.data.copy_(w)
        x = torch.randn(2, 6, 11, 11)
        assert torch.allclose(conv(x), x)


def test_box_is_constant() -> None:
    w = bank("box", kernel=5)
    assert torch.all(w == w.flatten()[0]) and torch.isclose(w[0].sum(), torch.tensor(1.0))


def test_smooth_has_less_high_frequency_energy_and_the_same_norm() -> None:
    raw, smooth = bank("random", kernel=7, seed=1), bank("smooth", kernel=7, seed=1, sigma=1.0)
    assert high_freq_share(smooth) < 0.5 * high_freq_share(raw)
    assert torch.allclose(raw.flatten(1).norm(dim=1), smooth.flatten(1).norm(dim=1), rtol=1e-5)
    smoother = bank("smooth", kernel=7, seed=1, sigma=2.0)
    assert high_freq_share(smoother) < high_freq_share(smooth)


@pytest.mark.parametrize("kind", ["random", "same", "smooth"])
def test_same_seed_bit_identical_other_seed_different(kind: str) -> None:
    assert torch.equal(bank(kind, seed=5), bank(kind, seed=5))
    assert not torch.equal(bank(kind, seed=5), bank(kind, seed=6))


@pytest.mark.parametrize("kind", DRAWN_BANKS)  # "pretrained" draws nothing: keeps the weights
def test_models_receive_the_bank(kind: str) -> None:
    model = create_model("sep_resnet", depth=8, width=4, filters=kind, seed=2)
    depthwise = [m for m in model.modules() if isinstance(m, DepthwiseConv2d)]
    assert len(depthwise) == 7  # stem + 3 blocks × 2 convs
    again = create_model("sep_resnet", depth=8, width=4, filters=kind, seed=2)
    for a, b in zip(depthwise, [m for m in again.modules() if isinstance(m, DepthwiseConv2d)], strict=True):
        assert torch.equal(a.weight, b.weight)
    if kind == "identity":
        assert all(((m.weight == 1).sum(dim=(1, 2, 3)) == 1).all() for m in depthwise)


def test_unknown_bank_and_bad_sigma() -> None:
    from spatialmix_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'smooth'"):
        bank("smoth")
    with pytest.raises(ConfigError, match="smooth:σ"):
        bank("smooth", sigma=0)


def test_smoothing_is_a_low_pass_filter_on_images() -> None:
    """A conv with smoothed filters passes less of a checkerboard than with the raw random filters."""
    raw, smooth = (
        bank("random", channels=1, d=64, kernel=7, seed=3),
        bank("smooth", channels=1, d=64, kernel=7, seed=3, sigma=1.5),
    )
    checker = (torch.arange(16).view(-1, 1) + torch.arange(16).view(1, -1)) % 2 * 2.0 - 1
    x = checker.view(1, 1, 16, 16)
    assert F.conv2d(x, smooth).abs().mean() < 0.5 * F.conv2d(x, raw).abs().mean()
