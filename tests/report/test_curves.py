"""Training curves: a point per logged step (steps.jsonl) with the test points of metrics.jsonl, the
per-epoch rows where a run has no steps.jsonl, markers where a series has one point, x from 0 with
integer ticks, type of 8 pt or more, shared y limits where panels compare. Built from constructed run
directories (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from matplotlib.figure import Figure
from matplotlib.text import Text

from spatialmix_cli.analysis.reporting import load_runs
from spatialmix_cli.analysis.reporting.curves import (
    Curve,
    draw_curves,
    draw_test,
    draw_train,
    epoch_rows,
    settings,
    step_rows,
    train_curve,
    y_limits,
)

from conftest import json_lines, tiny_config

PER_EPOCH = 8  # steps an epoch; logged every 2 steps


def make_run(
    root: Path, learn: str, seed: int, *, epochs: int = 2, steps: bool = True, **config: Any
) -> Path:
    """A finished run of ``epochs`` epochs: accuracy rising with the step (offset by the seed), a test
    point at every epoch's end; with ``steps``, a steps.jsonl line every 2 steps."""
    run = root / f"{learn}-s{seed}-{'-'.join(f'{k}{v}' for k, v in sorted(config.items()))}"
    run.mkdir(parents=True)
    cfg = tiny_config(learn=learn, seed=seed, epochs=epochs, **config)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    (run / "result.json").write_text(json.dumps({"test_acc": 0.5, "epochs": epochs}))
    acc = lambda step: 0.1 + 0.05 * step / PER_EPOCH + 0.01 * seed  # noqa: E731
    epochs_lines = [
        {"epoch": e, "step": e * PER_EPOCH, "train_loss": 1 - acc(e * PER_EPOCH), "train_acc": acc(e * PER_EPOCH),
         "test_loss": 0.5, "test_acc": 0.4 + 0.1 * e + 0.01 * seed}
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in epochs_lines))
    if steps:
        lines = [{"step": s, "epoch": s / PER_EPOCH, "train_loss": 1 - acc(s), "train_acc": acc(s), "lr": 0.01,
                  "images": 128} for s in range(2, epochs * PER_EPOCH + 1, 2)]  # fmt: skip
        (run / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 99, "ep')
    return run


def loaded(root: Path) -> tuple[list[Any], dict, dict]:
    runs = load_runs([root])[0]
    return runs, {id(r): epoch_rows(r) for r in runs}, {id(r): step_rows(r) for r in runs}


def test_the_training_curve_has_a_point_per_logged_step_over_the_seeds(tmp_path: Path) -> None:
    for seed in (0, 1):
        make_run(tmp_path, "chans", seed)
    runs, rows, steps = loaded(tmp_path)
    assert [len(steps[id(r)]) for r in runs] == [8, 8]  # the torn last line is left out
    c = train_curve(runs, "train_acc", steps, rows)
    assert c.per_step and c.x == pytest.approx([s / PER_EPOCH for s in range(2, 17, 2)])  # fractional epochs
    assert c.n == [2] * 8
    assert c.mean[0] == pytest.approx(0.1 + 0.05 * 2 / PER_EPOCH + 0.005)
    assert c.std[0] == pytest.approx(0.01 / 2**0.5)


def test_runs_without_steps_fall_back_to_their_epoch_rows(tmp_path: Path) -> None:
    make_run(tmp_path, "chans", 0)
    make_run(tmp_path, "chans", 1, steps=False)  # an older run record: metrics.jsonl only
    runs, rows, steps = loaded(tmp_path)
    c = train_curve(runs, "train_acc", steps, rows)
    assert not c.per_step and c.x == [1, 2] and c.n == [2, 2]
    alone = [r for r in runs if r.config.seed == 0]
    assert train_curve(alone, "train_acc", steps, rows).per_step


def drawn(draw: Any, c: Curve) -> Any:
    ax = Figure().add_subplot()
    draw(ax, c, "tab:blue", 100.0)
    return ax


def test_a_single_point_is_a_marker_and_a_per_step_curve_a_line() -> None:
    one = Curve([1.0], [0.5], [None], [1], per_step=True)
    (line,) = drawn(draw_train, one).lines
    assert line.get_marker() == "o" and list(line.get_xdata()) == [1.0]
    many = Curve([0.25, 0.5, 1.0], [0.2, 0.3, 0.4], [0.01, 0.01, 0.01], [2, 2, 2], per_step=True)
    (line,) = drawn(draw_train, many).lines
    assert line.get_marker() in ("", "None") and line.get_linestyle() == "-"
    epochs = Curve([1.0, 2.0], [0.2, 0.4], [None, None], [1, 1], per_step=False)
    assert drawn(draw_train, epochs).lines[0].get_marker() == "o"  # per epoch: every point marked
    test = drawn(draw_test, Curve([1.0], [0.5], [None], [1])).lines[0]
    assert test.get_marker() == "D" and test.get_linestyle() == "None"  # no line to draw from one point
    test = drawn(draw_test, Curve([1.0, 2.0], [0.5, 0.6], [0.1, 0.1], [2, 2])).lines[0]
    assert test.get_marker() == "D" and test.get_linestyle() == "--"


@pytest.mark.parametrize("epochs", [1, 2])
def test_panels_read_from_zero_with_whole_epochs_legible_type_and_shared_y(
    tmp_path: Path, epochs: int
) -> None:
    for learn, seed in (("full", 0), ("chans", 0), ("chans", 1)):
        make_run(tmp_path, learn, seed, epochs=epochs)
    make_run(tmp_path, "chans", 0, epochs=epochs, width=32, steps=False)  # a second setting, older record
    found = settings(load_runs([tmp_path])[0])
    fig = draw_curves(found, "metric")
    fig.canvas.draw()  # ticks and legends as saved
    axes = fig.axes
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xlim()[0] == 0 and epochs <= ax.get_xlim()[1] < epochs + 0.2
        ticks = [t for t in ax.get_xticks() if 0 <= t <= ax.get_xlim()[1]]
        assert ticks == list(range(epochs + 1))
        assert ax.get_legend() is not None
    assert axes[0].get_ylim() == axes[1].get_ylim()  # same task and dataset: the same y limits
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert sizes and min(sizes) >= 8
    markers = {line.get_marker() for line in axes[1].lines}
    assert "o" in markers  # the older record's per-epoch points are marked


def test_shared_limits_hold_the_means_and_bands_with_a_margin() -> None:
    assert y_limits([10.0, 20.0], log=False) == pytest.approx((9.5, 20.5))
    lo, hi = y_limits([1e-3, 1e-1, -1.0], log=True)  # a log axis: decades, non-positive values left out
    assert lo == pytest.approx(1e-3 / 10**0.1) and hi == pytest.approx(1e-1 * 10**0.1)
    assert y_limits([], log=False) is None


def test_a_wide_test_error_bar_does_not_set_the_shared_limits(tmp_path: Path) -> None:
    make_run(tmp_path, "chans", 0)
    make_run(tmp_path, "chans", 1)
    make_run(tmp_path, "chans", 0, width=32)
    outlier = make_run(tmp_path, "chans", 1, width=32)
    lines = json_lines((outlier / "metrics.jsonl").read_text())
    lines[-1]["test_acc"] = 0.0  # one seed's test point far off: a wide error bar in that panel
    (outlier / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    axes = draw_curves(settings(load_runs([tmp_path])[0]), "metric").axes
    low = axes[1].get_ylim()[0]
    assert axes[0].get_ylim()[0] == low and 0 < low < 30  # the bar (30 % ± 42) runs out below the frame
