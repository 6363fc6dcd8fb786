"""bf16 autocast on a CPU (``cpu_bf16``): off by default, refused without native bf16 units, and when on,
the training forward really runs in bf16 (the trained weights differ from a float32 run, stay finite)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from spatialmix_cli.errors import ConfigError
from spatialmix_cli.models import create_model
from spatialmix_cli.training import runtime
from spatialmix_cli.training.hardware import CpuInfo
from spatialmix_cli.training.loop import train
from spatialmix_cli.training.runtime import autocast, check_bf16, use_bf16

from conftest import tiny_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
WITH_BF16 = CpuInfo("test CPU", frozenset({"avx512_bf16"}))
WITHOUT_BF16 = CpuInfo("test CPU", frozenset({"avx2"}))


def test_which_device_runs_in_bf16() -> None:
    assert not use_bf16(tiny_config(), CPU)  # the default on a CPU: float32, whatever the CPU has
    assert use_bf16(tiny_config(cpu_bf16=True), CPU)
    assert use_bf16(tiny_config(), CUDA) and not use_bf16(tiny_config(bf16=False), CUDA)
    assert not use_bf16(tiny_config(cpu_bf16=True, bf16=False), CUDA) and use_bf16(
        tiny_config(cpu_bf16=True), CUDA
    )
    w, x = torch.randn(4, 3, 3, 3), torch.randn(1, 3, 8, 8)
    with autocast(CPU, True):
        assert F.conv2d(x, w).dtype == torch.bfloat16
    with autocast(CPU, False):
        assert F.conv2d(x, w).dtype == torch.float32


@pytest.mark.parametrize("learn", ["full", "chans"])
def test_bf16_forward_and_gradients_match_float32_to_bf16_precision(learn: str) -> None:
    # The one fast path that is not float-exact: bf16 keeps 8 bits of mantissa (relative step 2^-8 = 0.4 %);
    # a ConvMixer forward and backward through it stays within a few percent of float32.
    model = create_model("convmixer", learn=learn, num_classes=10, width=32, depth=2, kernel=5, patch=2, seed=1,
                         mean=[0.5] * 3, std=[0.25] * 3).to(memory_format=torch.channels_last)  # fmt: skip
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.arange(8) % 10
    results = []
    for bf16 in (False, True):
        model.zero_grad(set_to_none=True)
        with autocast(CPU, bf16):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        results.append((logits.dtype, logits.float().detach(), grads))
    (ref_dtype, ref, ref_grads), (out_dtype, out, out_grads) = results
    assert (ref_dtype, out_dtype) == (torch.float32, torch.bfloat16)
    gap = (out - ref).abs().max() / ref.abs().max()
    assert 0 < gap < 0.03  # 0.9 % measured here
    for g_ref, g_out in zip(ref_grads, out_grads, strict=True):
        assert (g_out - g_ref).norm() <= 0.08 * g_ref.norm() + 1e-6  # at most 4 % measured here


def test_refused_on_a_cpu_without_bf16_units(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime, "cpu_info", lambda: WITHOUT_BF16)
    with pytest.raises(ConfigError, match="no native bf16 units"):
        check_bf16(tiny_config(cpu_bf16=True), CPU)
    check_bf16(tiny_config(), CPU)  # float32 needs nothing
    check_bf16(tiny_config(cpu_bf16=True), CUDA)  # the CPU's units do not matter on a GPU
    with pytest.raises(ConfigError, match="no native bf16 units"):  # before anything is written
        train(tiny_config(cpu_bf16=True), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # fast sibling: the bf16 forward/gradient test
def test_a_cpu_bf16_run_trains_in_bf16(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime, "cpu_info", lambda: WITH_BF16)  # autocast also runs, emulated, without them
    fp32 = train(tiny_config(epochs=1), tmp_path / "fp32")
    bf16 = train(tiny_config(epochs=1, cpu_bf16=True), tmp_path / "bf16")
    assert bf16.train_loss == pytest.approx(fp32.train_loss, rel=0.05)
    assert bf16.train_loss != fp32.train_loss  # bf16 rounding changed the numbers
    assert torch.isfinite(torch.tensor(bf16.test_loss)) and Path(bf16.checkpoint).exists()


def test_the_cli_refuses_cleanly(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cpu_info", lambda: WITHOUT_BF16)
    result = cli("train", "--arch", "convmixer", "--width", "16", "--depth", "1", "--dataset", "synthetic",
                 "--device", "cpu", "--set", "cpu_bf16=true", "--out", "run")  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: cpu_bf16: this CPU has no native bf16 units")
    assert len(result.stderr.strip().splitlines()) == 1
