"""torch.compile on, off and auto: the automatic rule (never on a CPU), its fallback, and that a compiled training step
computes what the eager one computes (forward, loss and every gradient) and trains a run end to end."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from spatialmix_cli.models import create_model
from spatialmix_cli.store.checkpoint import load_model
from spatialmix_cli.training import compiling
from spatialmix_cli.training.callbacks import Callbacks
from spatialmix_cli.training.compiling import (
    PROBE_STEPS,
    CompileError,
    CompileSwitch,
    auto_mode,
    should_compile,
)
from spatialmix_cli.training.loop import train

from conftest import tiny_config


def test_should_compile_compares_the_remaining_eager_time_with_the_threshold() -> None:
    assert should_compile(2.0, 301, min_eager_s=600)
    assert not should_compile(2.0, 300, min_eager_s=600)
    assert not should_compile(0.01, 10_000, min_eager_s=600)


def test_auto_never_compiles_on_a_cpu_and_decides_from_the_first_steps_on_cuda() -> None:
    assert auto_mode(torch.device("cpu")) is False
    assert auto_mode(torch.device("cuda", 0)) is None


class FakeCompile:
    """Stands in for torch.compile: counts compiles; the compiled function doubles the result (so a test
    can tell which path ran) or raises."""

    def __init__(self, fail: bool = False) -> None:
        self.count = 0
        self.fail = fail

    def __call__(self, fn: Any) -> Any:
        self.count += 1

        def compiled(x: Any) -> Any:
            if self.fail:
                raise RuntimeError("no C++ compiler\nlong inductor traceback")
            return 2 * fn(x)

        return compiled


def _switch(monkeypatch: pytest.MonkeyPatch, mode: bool | None, total: int, step_s: float, **kw: Any):
    fake = FakeCompile(kw.pop("fail", False))
    monkeypatch.setattr(compiling.torch, "compile", fake)
    ticks = itertools.count()
    notes: list[str] = []
    switch = CompileSwitch(
        lambda x: x, mode, total_steps=total, note=notes.append, clock=lambda: next(ticks) * step_s,
        min_eager_s=100, **kw,
    )  # fmt: skip
    return switch, fake, notes


def test_auto_compiles_after_the_probe_steps_of_a_long_run(monkeypatch: pytest.MonkeyPatch) -> None:
    switch, fake, notes = _switch(monkeypatch, None, total=1000, step_s=1.0)
    outs = [switch(1) for _ in range(PROBE_STEPS + 3)]
    assert outs == [1] * PROBE_STEPS + [2, 2, 2]  # eager while probing, compiled from the deciding call on
    assert fake.count == 1 and switch.is_compiled
    assert len(notes) == 1 and f"{1000 - PROBE_STEPS} steps left" in notes[0]


def test_auto_stays_eager_for_a_short_run_and_a_resumed_nearly_done_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for total, done in [(50, 0), (1000, 950)]:
        switch, fake, notes = _switch(monkeypatch, None, total=total, step_s=1.0, done_steps=done)
        assert [switch(1) for _ in range(20)] == [1] * 20
        assert fake.count == 0 and not switch.is_compiled and notes == []


def test_auto_decision_is_shared_through_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def any_rank(local: bool) -> bool:  # another rank wanted to compile
        asked.append(local)
        return True

    switch, fake, _ = _switch(monkeypatch, None, total=20, step_s=1.0, agree=any_rank)
    [switch(1) for _ in range(PROBE_STEPS + 2)]
    assert asked == [False] and switch.is_compiled  # asked once, at the same call on every rank


def test_on_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    on, fake_on, _ = _switch(monkeypatch, True, total=5, step_s=1.0)
    assert on(3) == 6 and fake_on.count == 1
    off, fake_off, _ = _switch(monkeypatch, False, total=10**6, step_s=100.0)
    assert [off(3) for _ in range(10)] == [3] * 10 and fake_off.count == 0


def test_failed_compile_falls_back_in_auto_and_is_an_error_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auto, _, notes = _switch(monkeypatch, None, total=1000, step_s=1.0, fail=True)
    assert [auto(1) for _ in range(PROBE_STEPS + 3)] == [1] * (PROBE_STEPS + 3)
    assert not auto.is_compiled and "continuing eagerly" in notes[-1] and "no C++ compiler" in notes[-1]
    asked, _, _ = _switch(monkeypatch, True, total=10, step_s=1.0, fail=True)
    with pytest.raises(CompileError, match="--set compile=false"):
        asked(1)


@pytest.mark.slow  # torch.compile takes seconds per variant on a CPU; fast: the decision tests above
@pytest.mark.parametrize("learn", ["full", "chans"])
def test_compiled_step_matches_eager(learn: str) -> None:
    torch.manual_seed(0)
    model = create_model("convmixer", num_classes=10, in_chans=3, width=16, depth=1, kernel=5, patch=2,
                         learn=learn).to(memory_format=torch.channels_last)  # fmt: skip
    twin = copy.deepcopy(model)
    x = torch.randn(8, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,))
    losses = []
    for m, fn in [(model, model), (twin, torch.compile(twin))]:
        m.train()
        loss = F.cross_entropy(fn(x), y)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name  # frozen stays frozen when compiled
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5, msg=name)
    for (name, b), c in zip(model.named_buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(b, c, rtol=1e-4, atol=1e-5, msg=name)  # BatchNorm running statistics


class Notes(Callbacks):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def on_note(self, text: str) -> None:
        self.notes.append(text)


@pytest.mark.slow  # compiles; fast: the decision tests
def test_train_compiled_end_to_end_and_auto_stays_eager_for_a_tiny_run(tmp_path: Path) -> None:
    compiled = train(tiny_config(epochs=1, learn="chans", compile=True), tmp_path / "compiled")
    assert compiled.compiled and 0 <= compiled.test_acc <= 1
    assert set(load_model(compiled.checkpoint).state_dict()) == set(
        create_model("convmixer", num_classes=10, in_chans=3, width=16, depth=2, kernel=3, patch=4,
                     learn="chans").state_dict()
    )  # fmt: skip  # no torch.compile wrapper prefixes in the checkpoint
    notes = Notes()
    # precise_bn=never: this is about the compile decision; the BN pass's own note is tests/training/test_precise_bn.py's
    auto = train(tiny_config(epochs=3, learn="chans", precise_bn="never"), tmp_path / "auto", callbacks=notes)
    assert not auto.compiled and notes.notes == []
