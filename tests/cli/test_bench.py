"""The benchmark runs end to end and reports every number it promises (speed itself is never asserted in
tests: `make bench` measures it)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch

from spatialmix_cli.commands.bench import BenchSettings, bench_preset, bench_rows, machine, train_flops
from spatialmix_cli.models import create_model
from spatialmix_cli.training.hardware import cpu_info

TINY = dict(width=16, depth=1, kernel=3, patch=4)


def _check_throughput(row: dict) -> None:
    """Both paths measured for each kind of step, their ratio and its quartiles consistent, FLOPs counted."""
    for kind in ("train", "eval", "attack"):
        assert row[f"{kind}_img_s"] > 0 and row[f"{kind}_ref_img_s"] > 0
        assert abs(row[f"{kind}_ratio"] - row[f"{kind}_img_s"] / row[f"{kind}_ref_img_s"]) < 1e-9
        q1, q3 = row[f"{kind}_ratio_quartiles"]
        assert 0 < q1 <= q3
    assert row["gflop_per_train_image"] > 0 and 0 < row["train_pct_of_peak"]


@pytest.mark.slow  # compiles; fast: the flop count and forked-side tests
def test_bench_row_has_both_paths_and_ratios() -> None:  # with the compiled training forward (--compile)
    row = bench_preset("convmixer", "chans", BenchSettings(batch_size=8, iters=1, warmup=0, device="cpu", compile=True,
                                                           peak_gflops=100.0), TINY)  # fmt: skip
    _check_throughput(row)


def test_flop_count_matches_the_analytic_count() -> None:
    # ConvMixer-256/8 k5 p2 on 32×32: per image, 16×16 positions of a 2×2×3→256 stem, then 8 blocks of a
    # 5×5 depthwise and a 256→256 pointwise conv (2 FLOPs per multiply-add); training = 3 × forward.
    positions, width = 16 * 16, 256
    forward = positions * (2 * 2 * 2 * 3 * width + 8 * (2 * 25 * width + 2 * width * width))
    counted = train_flops(create_model("convmixer_256_8_k5_p2", num_classes=10), 2) / 2
    assert abs(counted - 3 * forward) / (3 * forward) < 0.01


@pytest.mark.slow  # bench CLI; fast: the flop count and forked-side tests
def test_bench_cli_writes_json(cli, tmp_path: Path) -> None:
    result = cli("bench", "--preset", "nope")
    assert result.exit_code == 2 and "unknown preset" in result.stderr
    bad = cli("bench", "--iters", "0")
    assert bad.exit_code == 2
    if not torch.cuda.is_available():
        gpu = cli("bench", "--device", "cuda")
        assert gpu.exit_code == 2 and "no CUDA GPU" in gpu.stderr
    mode = cli("bench", "--learn", "full,nope")  # refused before any row's process is spawned
    assert mode.exit_code == 2 and mode.stderr.startswith("error: unknown learn mode 'nope'")
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.slow  # four spawned processes; fast: the forked-side test
def test_bench_rows_run_both_sides_in_their_own_processes() -> None:
    """The CLI's path: each row spawns a reference process and a project process, times their steps
    interleaved, reports each one's peak memory, and leaves no process behind."""
    seen: list[dict] = []
    settings = BenchSettings(batch_size=8, iters=2, warmup=1, device="cpu", compile=False)
    rows = bench_rows(["convmixer"], ["full", "chans"], settings, on_row=seen.append, model_kwargs=TINY)
    assert [r["learn"] for r in rows] == ["full", "chans"] and seen == rows
    for row in rows:
        assert row["peak_rss_mib_ref"] > 0 and row["peak_rss_mib"] > 0
        assert row["train_ratio"] > 0 and "train_pct_of_peak" not in row  # no --peak-gflops given
        assert "first_step_s" in row
        q1, q3 = row["train_ratio_quartiles"]
        assert 0 < q1 <= q3
    assert multiprocessing.active_children() == []


@pytest.mark.slow  # bench CLI; fast: the flop count and forked-side tests
def test_one_row_through_the_cli_path() -> None:
    """The fast sibling of the two tests above: one row, one step per kind, both sides spawned, with a peak
    given (the compiled forward is checked there, under `slow`)."""
    seen: list[dict] = []
    settings = BenchSettings(batch_size=8, iters=1, warmup=0, device="cpu", compile=False, peak_gflops=100.0)
    rows = bench_rows(["convmixer"], ["chans"], settings, on_row=seen.append, model_kwargs=TINY)
    assert [r["learn"] for r in rows] == ["chans"] and seen == rows
    row = rows[0]
    _check_throughput(row)
    assert row["peak_rss_mib_ref"] > 0 and row["peak_rss_mib"] > 0 and "first_step_s" in row
    assert multiprocessing.active_children() == []


@pytest.mark.slow  # two spawned processes; the fast sibling below forks them instead
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_failing_side_is_reported_and_cleaned_up() -> None:
    with pytest.raises(RuntimeError, match="(?s)bench reference process failed.*cuda"):
        bench_preset(
            "convmixer", "chans", BenchSettings(batch_size=8, iters=1, warmup=0, device="cuda"), TINY
        )
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_failing_forked_side_is_reported_and_cleaned_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same error path with forked workers: no fresh interpreter to import torch into (the worker
    fails at its first step, before any OpenMP work, so forking this threaded process is safe here)."""
    fork = multiprocessing.get_context("fork")
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: fork)
    with pytest.raises(RuntimeError, match="(?s)bench reference process failed.*cuda"):
        bench_preset(
            "convmixer", "chans", BenchSettings(batch_size=8, iters=1, warmup=0, device="cuda"), TINY
        )
    assert multiprocessing.active_children() == []


def test_machine_names_the_cpu_and_its_vector_units() -> None:
    # Ratios differ between CPUs (AVX2 vs AVX-512, bf16 units), so bench.json must say which one it ran on.
    info, cpu = machine(), cpu_info()
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["cpu"] == cpu.name and info["cpu_bf16"] is cpu.bf16
