"""`spatialmix report`: built from run directories made in the test — real tiny runs for the files and
figures, and run directories with constructed results for claims that must hold or fail."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from spatialmix_cli import TrainConfig, train
from spatialmix_cli.analysis.reporting import FAILS, HOLDS, UNKNOWN, build_report, load_runs
from spatialmix_cli.analysis.reporting.browser import check_html, find_chromium
from spatialmix_cli.analysis.reporting.claims import all_claims
from spatialmix_cli.analysis.reporting.stats import INCONCLUSIVE
from spatialmix_cli.attacks import attack_checkpoint, load_sample, record
from spatialmix_cli.config.attack import AttackPlan
from spatialmix_cli.store.checkpoint import load_checkpoint

from conftest import json_lines, tiny_config


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny real runs: full / chans / space ConvMixers at two depths, attacked; one un-shuffle pair."""
    root = tmp_path_factory.mktemp("runs")
    for learn in ("full", "chans", "space"):
        for depth in (1, 2):
            run = root / "sweep" / f"{learn}-d{depth}"
            result = train(tiny_config(learn=learn, depth=depth, epochs=1, subset=128), run)
            if depth == 2 and learn != "space":
                ckpt = load_checkpoint(result.checkpoint)
                plan = AttackPlan(
                    methods=["fgsm", "pgd"], eps=[1 / 255, 4 / 255], n=32, batch_size=32, large_eps_steps=2
                )
                record(run, attack_checkpoint(ckpt, load_sample(ckpt.info, n=32, seed=0), plan))
    from spatialmix_cli.analysis.unshuffle.grid import save_grid
    from spatialmix_cli.analysis.unshuffle.scores import save_scores, score_checkpoint

    for learn in ("full", "chans"):
        cfg = TrainConfig.from_dict(dict(task="unshuffle", arch="convmixer_unshuffle", dataset="synthetic", width=8,
                                         depth=1, kernel=3, subset=64, test_subset=16, epochs=1, batch_size=32,
                                         device="cpu", learn=learn, logger="none"))  # fmt: skip
        run = root / "unshuffle" / learn
        scores, ex = score_checkpoint(load_checkpoint(train(cfg, run).checkpoint), examples=2)
        save_scores(run, scores)
        save_grid(run / "reconstructions.png", ex.truth, ex.scrambled, [(learn, ex.restored)])
    return root


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_report_from_real_runs_writes_md_html_json_and_every_image_exists(
    real_runs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    report = build_report([real_runs], out, draws=2, pad=64)
    assert len(report.runs) == 8 and not report.skipped
    md = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(images) >= 5  # depth sweep, attack bars, ε curves, envelopes, reconstruction grids
    for rel in images:
        assert (out / rel).read_bytes()[:4] == b"\x89PNG", rel
    assert (
        any("vs-depth" in i for i in images)
        and any("fig6" in i for i in images)
        and any("grid-" in i for i in images)
    )
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(images)
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == list(range(1, 12))
    assert summary["runs"] == 8 and summary["machine"]["torch"]
    assert "| 9 | random-bank spectral coverage grows" in md
    assert "n=1" in md  # the number of runs behind each cell is shown


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_unfinished_runs_are_listed_as_skipped(real_runs: Path, tmp_path: Path) -> None:
    broken = tmp_path / "runs"
    shutil.copytree(real_runs / "sweep" / "full-d1", broken / "done")
    shutil.copytree(real_runs / "sweep" / "full-d1", broken / "half")
    (broken / "half" / "result.json").unlink()
    runs, skipped = load_runs([broken])
    assert [r.path.name for r in runs] == ["done"]
    assert len(skipped) == 1 and "unfinished" in skipped[0]


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_the_same_run_from_two_recipes_counts_once(real_runs: Path, tmp_path: Path) -> None:
    """A depth sweep and a width sweep that cross at one point train the same config and seed twice: one
    sample, not two (n=1, no std of 0), and the attack results of both copies are kept."""
    root = tmp_path / "runs"
    shutil.copytree(real_runs / "sweep" / "full-d2", root / "depth-sweep" / "full-d2")
    shutil.copytree(real_runs / "sweep" / "full-d2", root / "width-sweep" / "full-w8")
    (root / "depth-sweep" / "full-d2" / "attacks.jsonl").unlink()
    runs, skipped = load_runs([root])
    assert len(runs) == 1 and runs[0].attacks
    assert len(skipped) == 1 and "same config and seed" in skipped[0] and "counted once" in skipped[0]
    # the copy that kept its weights is the one counted (figures need them), whichever sorts first
    (root / "depth-sweep" / "full-d2" / "model.safetensors").unlink()
    runs, _ = load_runs([root])
    assert runs[0].path.name == "full-w8" and runs[0].attacks


# --- constructed run directories: verdicts that must come out right ---------------------------------
def make_run(root: Path, template: Path, name: str, *, metric: float, attacks: list[dict[str, Any]] = (),
             **config: Any) -> Path:  # fmt: skip
    """A run directory whose config is ``config`` and whose test metric is ``metric`` (the weights file is
    a real one; only the numbers are set by the test)."""
    run = root / name
    run.mkdir(parents=True)
    cfg = tiny_config(**config)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    shutil.copyfile(template / "model.safetensors", run / "model.safetensors")
    (run / "result.json").write_text(json.dumps({"test_acc": metric}))
    if attacks:
        (run / "attacks.jsonl").write_text("".join(json.dumps(a) + "\n" for a in attacks))
    return run


def attack(
    method: str, robust: float, clean: float, flags: list[str] = (), eps: float = 1 / 255, seed: int = 0
) -> dict[str, Any]:
    """A result line as `spatialmix attack` writes it (PGD: the paper's reading, α = ε, no random start)."""
    pgd = method == "pgd"
    return {"method": method, "eps": eps, "steps": 2 if pgd else None, "alpha": eps if pgd else None,
            "random_start": False if pgd else None, "n": 1000, "seed": 0, "clean_acc": clean,
            "robust_acc": robust, "flags": list(flags), "source": None}  # fmt: skip


def cell(root: Path, template: Path, name: str, metrics: list[float], attacks=None, **config: Any) -> None:  # noqa: ANN001
    """One run per seed (0, 1, ...) with the given test metrics; ``attacks(seed)`` gives its attack lines."""
    for seed, metric in enumerate(metrics):
        make_run(root, template, f"{name}-s{seed}", metric=metric, seed=seed,
                 attacks=attacks(seed) if attacks else (), **config)  # fmt: skip


def verdicts(root: Path) -> dict[int, Any]:
    runs, _ = load_runs([root])
    fresh = {1: [0.30, 0.28, 0.33], 4: [0.60, 0.65, 0.62]}
    return {c.id: c for c in all_claims(runs, fresh)}


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_learn_mode_claims_hold_fail_inconclusive_and_need_runs(real_runs: Path, tmp_path: Path) -> None:
    t = real_runs / "sweep" / "full-d1"
    good, bad, noisy, single = (tmp_path / x for x in ("good", "bad", "noisy", "single"))
    for depth in (1, 2):
        cell(good, t, f"full{depth}", [0.80, 0.81, 0.82], learn="full", depth=depth)
        cell(good, t, f"chans{depth}", [0.79, 0.80, 0.80], learn="chans", depth=depth)
        cell(good, t, f"space{depth}", [0.60, 0.62, 0.61], learn="space", depth=depth)
        cell(bad, t, f"full{depth}", [0.80, 0.81, 0.82], learn="full", depth=depth)
        cell(bad, t, f"chans{depth}", [0.79, 0.80, 0.81] if depth == 1 else [0.70, 0.71, 0.71], learn="chans",
             depth=depth)  # fmt: skip
    v = verdicts(good)
    assert v[1].verdict == HOLDS and v[2].verdict == HOLDS and len(v[1].evidence) == 2
    assert "95% CI" in v[1].evidence[0] and "n=3 seeds" in v[1].evidence[0]
    assert v[9].verdict == HOLDS  # coverage 0.30 < 0.62 beyond doubt
    w = verdicts(bad)
    assert w[1].verdict == FAILS and "full − chans = +10.3 points" in " ".join(w[1].evidence)
    assert w[2].verdict == UNKNOWN  # no space runs
    assert w[3].verdict == UNKNOWN and w[8].verdict == UNKNOWN
    # a 3-point gap whose seeds scatter by ±3: the interval straddles the threshold
    cell(noisy, t, "full", [0.80, 0.86, 0.80], learn="full")
    cell(noisy, t, "chans", [0.79, 0.80, 0.78], learn="chans")
    assert verdicts(noisy)[1].verdict == INCONCLUSIVE
    # one seed per cell: no interval, whatever the gap
    cell(single, t, "full", [0.90], learn="full")
    cell(single, t, "chans", [0.70], learn="chans")
    one = verdicts(single)[1]
    assert one.verdict == UNKNOWN and "fewer than 2 paired seeds" in one.evidence[0]


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_differences_are_paired_by_seed(real_runs: Path, tmp_path: Path) -> None:
    """Seeds that move full and chans together cancel in a paired difference: a 2-point gap that each seed
    repeats exactly holds, though each cell's own spread (±5 points) dwarfs it."""
    t = real_runs / "sweep" / "full-d1"
    cell(tmp_path / "r", t, "full", [0.75, 0.80, 0.85], learn="full")
    cell(tmp_path / "r", t, "chans", [0.73, 0.78, 0.83], learn="chans")
    claim = verdicts(tmp_path / "r")[1]
    assert claim.verdict == HOLDS
    (comparison,) = claim.comparisons
    assert comparison.interval.mean == pytest.approx(0.02) and comparison.interval.sd == pytest.approx(
        0, abs=1e-12
    )


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_filter_order_and_width_claims(real_runs: Path, tmp_path: Path) -> None:
    t = real_runs / "sweep" / "full-d1"
    jitter = (0.0, 0.004, -0.003)
    for f, acc in (("random", 0.80), ("same", 0.75), ("box", 0.70), ("identity", 0.50)):
        cell(tmp_path / "ok", t, f, [acc + j for j in jitter], learn="chans", filters=f)
    for f, acc in (("random", 0.80), ("same", 0.82), ("box", 0.70), ("identity", 0.50)):
        cell(tmp_path / "no", t, f, [acc + j for j in jitter], learn="chans", filters=f)
    assert verdicts(tmp_path / "ok")[3].verdict == HOLDS
    assert verdicts(tmp_path / "no")[3].verdict == FAILS
    for width, (f, c) in ((8, (0.80, 0.70)), (32, (0.85, 0.83))):
        cell(tmp_path / "w", t, f"full{width}", [f + j for j in jitter], learn="full", width=width)
        cell(tmp_path / "w", t, f"chans{width}", [c - j for j in jitter], learn="chans", width=width)
    assert verdicts(tmp_path / "w")[4].verdict == HOLDS


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_robustness_claims_and_masking_flags(real_runs: Path, tmp_path: Path) -> None:
    t = real_runs / "sweep" / "full-d1"
    root = tmp_path / "adv"
    d = (0.0, 0.01, -0.01)

    def lines(fgsm: float, pgd: float, clean: float, flags: list[str] = (), n: int = 1000):  # noqa: ANN202
        return lambda s: [{**attack("fgsm", fgsm + d[s], clean), "n": n},
                          {**attack("pgd", pgd + d[s], clean, flags), "n": n}]  # fmt: skip

    cell(root, t, "full", [0.80] * 3, lines(0.50, 0.45, 0.80), learn="full")
    cell(root, t, "chans", [0.79] * 3, lines(0.60, 0.58, 0.79, ["pgd_beats_fgsm"]), learn="chans")
    # |chans − full| within 2 points needs a tight interval: 10 000 attacked images (s.e. ≈ 0.6 points)
    cell(root, t, "full-fgsm", [0.78] * 3, lines(0.70, 0.69, 0.78, n=10_000), learn="full", adv="fgsm")
    cell(root, t, "chans-fgsm", [0.78] * 3, lines(0.705, 0.695, 0.78, n=10_000), learn="chans", adv="fgsm")
    v = verdicts(root)
    assert v[5].verdict == HOLDS and v[5].flagged  # chans ahead, but one result failed a masking check
    assert "PGD-2 (α=ε, no random start) ε=1/255" in " ".join(v[5].evidence)  # the attack, named exactly
    assert v[6].verdict == HOLDS and not v[6].flagged
    cell(root, t, "chans-smooth", [0.79, 0.792, 0.788], lines(0.70, 0.69, 0.79), learn="chans", filters="smooth:2")  # fmt: skip
    assert verdicts(root)[7].verdict == HOLDS
    for s in range(3):
        shutil.rmtree(root / f"chans-smooth-s{s}")
    cell(root, t, "chans-smooth", [0.70, 0.71, 0.69], lines(0.65, 0.64, 0.70), learn="chans", filters="smooth:2")  # fmt: skip
    assert verdicts(root)[7].verdict == FAILS  # more robust, but clean accuracy fell 9 points


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_attack_claims_count_the_test_image_sampling_error(real_runs: Path, tmp_path: Path) -> None:
    """A 1-point robust gain repeated exactly by 3 seeds is no evidence when it is measured on 100 images
    (binomial s.e. ≈ 6 points): inconclusive, not holds."""
    t = real_runs / "sweep" / "full-d1"
    root = tmp_path / "few"

    def lines(robust: float, n: int):  # noqa: ANN202
        return lambda s: [{**attack("fgsm", robust + s / 100, 0.8), "n": n}]

    cell(root, t, "full", [0.80] * 3, lines(0.50, 100), learn="full")
    cell(root, t, "chans", [0.80] * 3, lines(0.51, 100), learn="chans")
    claim = verdicts(root)[5]
    assert claim.verdict == INCONCLUSIVE and "test-image s.e." in claim.evidence[0]
    # and no number of seeds would decide it: the 100 images' error alone spans the 1-point gap
    assert claim.comparisons[0].to_decide.n is None and "more test images would" in claim.evidence[0]


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_an_inconclusive_comparison_says_how_many_seeds_would_decide_it(
    real_runs: Path, tmp_path: Path
) -> None:
    """Depth 1: full − chans = 0, +2, −1 points over 3 seeds against a 3-point bound: mean +0.33, s = 1.53,
    95 % CI ±3.8, inconclusive; t_3·1.53/√4 = 2.43 < 3 − 0.33 (and t_2·1.53/√3 = 3.79 is not), so 4 seeds
    would decide it. Depth 2: a 1-point gap every seed repeats holds, and carries no estimate."""
    t, root = real_runs / "sweep" / "full-d1", tmp_path / "runs"
    cell(root, t, "full1", [0.80, 0.82, 0.79], learn="full", depth=1)
    cell(root, t, "chans1", [0.80, 0.80, 0.80], learn="chans", depth=1)
    cell(root, t, "full2", [0.80, 0.81, 0.82], learn="full", depth=2)
    cell(root, t, "chans2", [0.79, 0.80, 0.81], learn="chans", depth=2)
    build_report([root], tmp_path / "rep", fmt="md", draws=2, pad=64)
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    (claim,) = [c for c in summary["claims"] if c["id"] == 1]
    by_verdict = {c["verdict"]: c for c in claim["comparisons"]}
    assert set(by_verdict) == {INCONCLUSIVE, HOLDS}
    assert by_verdict[INCONCLUSIVE]["to_decide"] == {"n": 4, "unit": "seeds", "why": "",
                                                     "text": "≈ 4 seeds would decide it"}  # fmt: skip
    assert by_verdict[HOLDS]["to_decide"] is None
    md = (tmp_path / "rep" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert (
        row.count("would decide it") == 1
        and "→ inconclusive (needs ≤ 3 points; ≈ 4 seeds would decide it)" in row
    )


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_report_cli_json_and_errors(cli, real_runs: Path, tmp_path: Path) -> None:
    result = cli(
        "report", real_runs / "sweep", "--out", tmp_path / "rep", "--format", "md", "--draws", "1", "--json"
    )
    assert result.exit_code == 0, result.stderr
    (summary,) = json_lines(result.stdout)
    assert summary["runs"] == 6 and len(summary["claims"]) == 11
    assert (tmp_path / "rep" / "report.md").is_file() and not (tmp_path / "rep" / "report.html").exists()
    assert "claims from 6 runs" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = cli("report", empty, "--out", tmp_path / "rep2")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: no finished runs")
    fmt = cli("report", real_runs, "--format", "pdf")
    assert fmt.exit_code == 2 and "--format" in fmt.stderr


needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium not installed (apt-get install chromium)"
)


@pytest.mark.slow  # starts Chromium; report.html's images are checked fast by the real-runs report test
@needs_chromium
def test_html_report_renders_in_headless_chromium_with_every_image(
    cli, real_runs: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    result = cli("report", real_runs, "--out", tmp_path / "rep", "--format", "html", "--draws", "1",
                 "--screenshot", shot)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    figures = (tmp_path / "rep" / "report.html").read_text().count("data:image/png;base64,")
    assert figures >= 5
    assert f"Chromium: {figures} images loaded, 0 broken" in result.stderr
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)  # a real, non-blank page: text and plots, not one colour
    assert pixels.shape[1] == 1280 and pixels[..., :3].std() > 0.05


@needs_chromium
def test_browser_check_counts_a_broken_image(tmp_path: Path) -> None:
    from spatialmix_cli.analysis.reporting.render import IMAGE_CHECK_SCRIPT

    png = (
        Path(__file__).resolve().parents[2] / "docs" / "figures" / "spectrum-random-vs-smooth.png"
    ).read_bytes()
    good = "data:image/png;base64," + __import__("base64").b64encode(png).decode()
    page = tmp_path / "page.html"
    page.write_text(
        f"<html><body><img src='{good}'><img src='missing.png'>{IMAGE_CHECK_SCRIPT}</body></html>"
    )
    seen = check_html(page)
    assert (seen.images, seen.broken, seen.screenshot) == (1, 1, None)


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_keys_that_change_results_keep_runs_apart(real_runs: Path, tmp_path: Path) -> None:
    """One list (config.RUNTIME_KEYS) says which keys do not change what a run computes. A bf16 run and its
    float32 twin are two runs, not one counted once; a run that only evaluated more often is the same run."""
    from spatialmix_cli.analysis.reporting import collect
    from spatialmix_cli.config.train import RUNTIME_KEYS

    assert {"cpu_bf16", "bf16", "sync_bn"}.isdisjoint(RUNTIME_KEYS)
    assert not hasattr(collect, "_NOT_IDENTITY")  # no second list to drift from the first
    template = real_runs / "sweep" / "full-d1"
    make_run(tmp_path / "a", template, "fp32", metric=0.5)
    make_run(tmp_path / "a", template, "bf16", metric=0.6, cpu_bf16=True)
    runs, skipped = load_runs([tmp_path / "a"])
    assert len(runs) == 2 and not skipped
    make_run(tmp_path / "b", template, "once", metric=0.5, eval_every=0)
    make_run(tmp_path / "b", template, "often", metric=0.5, eval_every=1)
    runs, skipped = load_runs([tmp_path / "b"])
    assert len(runs) == 1 and "counted once" in skipped[0]


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_a_report_rebuilds_from_run_records_without_weights(real_runs: Path, tmp_path: Path) -> None:
    """The committed reproduction keeps config, result, metrics and attack lines, not the weights: report
    must read those records (figures that need weights are left out) rather than call them unfinished."""
    records = tmp_path / "records"
    shutil.copytree(real_runs / "sweep", records)
    for weights in records.rglob("*.safetensors"):
        weights.unlink()
    runs, skipped = load_runs([records])
    assert len(runs) == 6 and not skipped
    assert any(r.attacks for r in runs)
    report = build_report([records], tmp_path / "rep", fmt="md", draws=2)
    assert len(report.claims) == 11 and (tmp_path / "rep" / "report.md").is_file()


def test_coverage_claim_counts_banks_and_shows_three_decimals() -> None:
    from spatialmix_cli.analysis.reporting.claims import coverage_grows

    claim = coverage_grows(
        {1: [0.30, 0.28, 0.33], 4: [0.60, 0.65, 0.62]},
        {"own banks": {1: [0.2, 0.25, 0.3], 4: [0.55, 0.6, 0.62]}},
    )
    assert claim.verdict == HOLDS
    assert "(n=3 banks)" in claim.evidence[0] and "+0.320" in claim.evidence[0]
    assert claim.evidence[1].startswith("own banks:")


def test_coverage_claim_describes_the_fixed_level() -> None:
    from spatialmix_cli.analysis.reporting.claims import coverage_grows

    rule = coverage_grows({1: [0.01, 0.02], 4: [0.05, 0.06]}).rule
    assert "unit energy" in rule and "|H| ≥ 2 × a flat spectrum" in rule and "threshold" not in rule


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_initial_banks_are_a_chans_runs_frozen_banks(real_runs: Path) -> None:
    """Rebuilt from the config alone, they are the banks a chans run kept frozen (and not a full run's)."""
    import torch

    from spatialmix_cli.analysis.spectra import depthwise_weights
    from spatialmix_cli.analysis.spectra.banks import initial_banks

    runs = {r.path.name: r for r in load_runs([real_runs / "sweep"])[0]}
    for name, frozen in (("chans-d2", True), ("full-d2", False)):
        stored = depthwise_weights(load_checkpoint(runs[name].path / "model.safetensors").model)
        rebuilt = initial_banks(runs[name].config)
        assert len(rebuilt) == len(stored) == 2
        assert all(torch.equal(a, b) for a, b in zip(rebuilt, stored, strict=True)) == frozen


def test_own_bank_coverage_needs_no_weights_and_counts_each_bank_once(tmp_path: Path) -> None:
    """Claim 9's own banks are a rule over the runs' configs: run records without weights count, a second run
    with the same seed and sizes (the same banks) does not, and more seeds give more banks."""
    from spatialmix_cli.analysis.reporting.build import own_bank_coverage
    from spatialmix_cli.analysis.reporting.collect import Run
    from spatialmix_cli.analysis.spectra.banks import disjoint_subset_coverage, initial_banks

    def run(name: str, seed: int, **kw: Any) -> Run:
        cfg = tiny_config(**{"learn": "chans", "width": 96, "depth": 1, "kernel": 5, "seed": seed, **kw})
        return Run(tmp_path / name, cfg, {})  # no such folder: nothing on disk

    got = own_bank_coverage([run("a", 0), run("b", 0, lr=0.1), run("c", 1), run("full", 2, learn="full")], 32)
    ((source, per_n),) = got.items()
    assert "kernel 5, 2 banks" in source and [len(v) for v in per_n.values()] == [2, 2, 2, 2]
    first = disjoint_subset_coverage(initial_banks(run("a", 0).config)[0], (1, 4, 16, 64), pad=32)
    assert [v[0] for v in per_n.values()] == list(first.values())


@pytest.mark.slow  # the real_runs fixture (~5 s); fast: test_report_figures
def test_fig9_envelopes_contrast_learned_with_frozen_random_filters(
    real_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fig. 9 shows a chans run with *random* frozen banks (not box or identity, even when those sort first)
    and the full run of the same setting and seed."""
    import spatialmix_cli.analysis.spectra.banks as banks_mod
    from spatialmix_cli.analysis.reporting import plots

    root = tmp_path / "r"
    for name in ("chans-d2", "full-d2", "full-d1"):
        shutil.copytree(real_runs / "sweep" / name, root / name)
    shutil.copytree(real_runs / "sweep" / "chans-d1", root / "a-chans-box")  # sorts first
    cfg = yaml.safe_load((root / "a-chans-box" / "config.yaml").read_text())
    (root / "a-chans-box" / "config.yaml").write_text(yaml.safe_dump({**cfg, "filters": "box"}))
    seen = []
    real = banks_mod.checkpoint_spectra
    monkeypatch.setattr(
        banks_mod, "checkpoint_spectra", lambda path, **kw: seen.append(Path(path).name) or real(path, **kw)
    )
    runs, _ = load_runs([root])
    fresh = [banks_mod.drawn_spectrum("random", 4, 5, pad=64)]
    plots.envelopes(runs, tmp_path / "fig", fresh, 64, 0.5)
    assert seen == ["full-d2", "chans-d2"]
