"""The trainer: it learns, writes the run directory, resumes to bit-identical weights, refuses to mix
configs, and the learning-rate schedule is what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.errors import RunDirError
from spatialmix_cli.store.checkpoint import load_model, read_metadata
from spatialmix_cli.training.loop import TrainingInterrupted, build_model, lr_at, train, train_step
from spatialmix_cli.training.tasks import Classify

from conftest import tiny_config


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).state_dict()


def test_train_writes_a_complete_run_dir_and_learns(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=3)
    result = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "metrics.jsonl",
        "last.safetensors",
        "model.safetensors",
        "result.json",
    }
    assert yaml.safe_load((run / "config.yaml").read_text()) == cfg.to_dict()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[-1]["test_acc"] == result.test_acc
    assert 0 <= result.test_acc <= 1 and result.train_loss < lines[0]["train_loss"]
    meta = read_metadata(result.checkpoint)
    assert meta["epoch"] == 3 and meta["config"]["width"] == 16 and meta["dataset"]["mean"] == [0.5, 0.5, 0.5]
    assert meta["model"]["kwargs"]["learn"] == "full"


def test_chans_run_counts_and_frozen_weights_unchanged_end_to_end(tmp_path: Path) -> None:
    cfg = tiny_config(learn="chans", epochs=1)
    result = train(cfg, tmp_path / "run")
    init = build_model(cfg, dataset_info("synthetic"))
    final = load_model(result.checkpoint)
    assert torch.equal(init.stem[0].weight, final.stem[0].weight)
    assert torch.equal(init.blocks[1][0].fn[0].weight, final.blocks[1][0].fn[0].weight)
    assert not torch.equal(init.blocks[1][1].weight, final.blocks[1][1].weight)
    assert result.params_frozen > 0


def test_resume_after_interrupt_mid_epoch_is_bit_identical(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=3, learn="chans")
    straight = train(cfg, tmp_path / "straight")
    calls = {"n": 0}

    def stop_after_5() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5  # 4 steps per epoch: stops in the middle of epoch 2

    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "resumed", should_stop=stop_after_5)
    assert read_metadata(tmp_path / "resumed" / "last.safetensors")["progress"]["step"] == 1
    with pytest.raises(RunDirError, match="unfinished run; pass --resume"):
        train(cfg, tmp_path / "resumed")
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    assert resumed.resumed
    a, b = weights(Path(straight.checkpoint)), weights(Path(resumed.checkpoint))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    metrics = [(tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in ("straight", "resumed")]
    strip = [
        [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "images_per_s")} for x in m]
        for m in metrics
    ]
    assert strip[0] == strip[1]


def test_finished_run_is_skipped_and_other_config_refused(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=1)
    first = train(cfg, tmp_path / "run")
    again = train(cfg, tmp_path / "run")
    assert again.skipped and again.test_acc == first.test_acc
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunDirError, match=r"another config \(lr: 0.01 -> 0.02\)"):
        train(cfg.updated({"lr": 0.02}), tmp_path / "run")
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}  # nothing changed
    replaced = train(cfg.updated({"lr": 0.02}), tmp_path / "run", overwrite=True)
    assert not replaced.skipped


def test_refuses_a_folder_that_is_not_a_run_dir(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(RunDirError, match="not a spatialmix run directory"):
        train(tiny_config(), tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


@pytest.mark.slow  # three runs; fast: the bit-identical resume test
def test_same_seed_same_result_other_seed_different(tmp_path: Path) -> None:
    a = train(tiny_config(epochs=1), tmp_path / "a")
    b = train(tiny_config(epochs=1), tmp_path / "b")
    c = train(tiny_config(epochs=1, seed=1), tmp_path / "c")
    wa, wb, wc = (weights(Path(r.checkpoint)) for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.slow  # a longer run; fast: the run-dir test
def test_sgd_cosine_label_smoothing_grad_clip_channels_last_run(tmp_path: Path) -> None:
    cfg = tiny_config(optimizer="sgd", schedule="cosine", warmup_epochs=1, label_smoothing=0.1, grad_clip=1.0,
                      channels_last=True, arch="sep_resnet", depth=8, width=4, kernel=3, patch=None)  # fmt: skip
    result = train(cfg, tmp_path / "run")  # channels_last on CPU: the strided 1x1 shortcut must not hang
    assert 0 <= result.test_acc <= 1 and result.epochs == 2


def test_lr_schedules() -> None:
    total, warm, peak = 100, 30, 1.0
    one = [lr_at(s, total=total, warmup=warm, peak=peak, schedule="onecycle") for s in range(total)]
    assert one[29] == pytest.approx(1.0) and one[0] == pytest.approx(1 / 30)
    assert all(a <= b for a, b in zip(one[:30], one[1:30], strict=False))
    assert all(a >= b for a, b in zip(one[30:], one[31:], strict=False)) and one[-1] < 0.02
    cos = [lr_at(s, total=total, warmup=0, peak=peak, schedule="cosine") for s in range(total)]
    assert cos[0] == pytest.approx(1.0) and cos[50] == pytest.approx(0.5) and cos[-1] < 0.01
    assert lr_at(99, total=total, warmup=0, peak=0.3, schedule="constant") == 0.3


def test_train_step_clips_the_optimizers_parameters_by_default() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step leaves the gradients to inspect
    x, y = torch.randn(16, 8) * 100, torch.randint(0, 3, (16,))
    kw = dict(device=torch.device("cpu"), bf16=False)
    train_step(model, opt, Classify(), x, y, **kw)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert norm > 1.0  # big inputs, big gradients: there is something to clip
    train_step(model, opt, Classify(), x, y, grad_clip=1e-3, **kw)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert clipped == pytest.approx(1e-3, rel=1e-3)
