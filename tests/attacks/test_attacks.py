"""Attacks on tiny models trained in the test: FGSM/PGD lower accuracy, ε = 0 is clean, PGD ≤ FGSM,
paired samples, masking checks that fire on a model with masked gradients, and the CLI contract."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import torchattacks
from torch import nn

import spatialmix_cli.attacks.build as attack_build
from spatialmix_cli import load_checkpoint, train
from spatialmix_cli.attacks import AttackSpec, attack_checkpoint, load_sample, perturb
from spatialmix_cli.attacks import checks as C
from spatialmix_cli.config.attack import AttackPlan
from spatialmix_cli.config.eps import parse_eps
from spatialmix_cli.config.numbers import format_eps
from spatialmix_cli.config.recipes import parse_recipe
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import Checkpoint, read_tensors
from spatialmix_cli.training.loop import adversary

from conftest import json_lines, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A channels-only and a fully learned ConvMixer-16/2 on synthetic data (a few seconds)."""
    root = tmp_path_factory.mktemp("attack-models")
    out = {}
    for learn in ("chans", "full"):
        result = train(tiny_config(learn=learn, subset=512, epochs=4, test_subset=256), root / learn)
        out[learn] = Path(result.checkpoint)
    return out


def sample_for(ckpt: Checkpoint, n: int = 128, seed: int = 0):
    return load_sample(ckpt.info, n=n, seed=seed)


# --- ε parsing -----------------------------------------------------------------------------------------
def test_eps_lists_accept_fractions_and_decimals() -> None:
    assert parse_eps("1/255, 2/255,0.5") == pytest.approx([1 / 255, 2 / 255, 0.5])
    assert parse_eps([0, "8/255"]) == pytest.approx([0.0, 8 / 255])
    assert [format_eps(e) for e in (0.0, 1 / 255, 8 / 255, 0.5)] == ["0", "1/255", "8/255", "0.5"]


@pytest.mark.parametrize(
    "text, message", [("abc", "number or a fraction"), ("-1/255", r"\[0, 1\]"), ("2", r"\[0, 1\]"), ("1/0", "fraction"), ("", "at least one")]
)  # fmt: skip
def test_bad_eps_is_a_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_eps(text)


# --- the attacks on a trained model --------------------------------------------------------------------
@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attacks_lower_accuracy_eps0_is_clean_and_pgd_beats_fgsm(trained: dict[str, Path]) -> None:
    ckpt = load_checkpoint(trained["full"])
    plan = AttackPlan(methods=["fgsm", "pgd"], eps=[0.0, 4 / 255, 16 / 255], steps=5, n=128, batch_size=64)
    results = attack_checkpoint(ckpt, sample_for(ckpt), plan)
    acc = {(r.method, r.eps): r.robust_acc for r in results}
    clean = results[0].clean_acc
    assert clean > 0.2  # the model learned something, so there is accuracy to lose
    assert acc[("fgsm", 0.0)] == clean and acc[("pgd", 0.0)] == clean
    assert acc[("fgsm", 16 / 255)] < clean and acc[("pgd", 16 / 255)] < clean
    assert acc[("pgd", 16 / 255)] <= acc[("fgsm", 16 / 255)] + C.noise(
        acc[("pgd", 16 / 255)], acc[("fgsm", 16 / 255)], 128
    )
    assert acc[("pgd", 4 / 255)] >= acc[("pgd", 16 / 255)]
    assert results[0].checks["eps0_is_clean"]["passed"] and results[0].checks["large_eps_to_chance"]["passed"]
    assert results[0].flags == []


# The standard AutoAttack (its composition, and one full run under `slow`) is tested on a tiny model in
# test_attack_specs.py; this runs its path on the trained models.
TINY_AA = [
    {"name": "APGD-CE", "steps": 3, "restarts": 1},
    {"name": "Square", "queries": 20, "restarts": 1, "p_init": 0.8, "resc_schedule": False},
]


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_autoattack_wiring_with_a_tiny_composition(
    trained: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path the standard AutoAttack takes (plan → build → MultiAttack run → components recorded, not
    run at ε = 0), with a two-part composition of a few iterations in place of its 100-step parts."""
    real = attack_build.build_attack

    def tiny_autoattack(model: nn.Module, spec: AttackSpec, *, num_classes: int, seed: int):
        if spec.method != "autoattack":
            return real(model, spec, num_classes=num_classes, seed=seed)
        common = dict(norm="Linf", eps=spec.eps, seed=seed, n_restarts=1)
        apgd = torchattacks.APGD(model, steps=3, loss="ce", **common)
        square = torchattacks.Square(model, n_queries=20, p_init=0.8, resc_schedule=False, **common)
        return torchattacks.MultiAttack([apgd, square])

    monkeypatch.setattr(attack_build, "build_attack", tiny_autoattack)
    ckpt = load_checkpoint(trained["full"])
    plan = AttackPlan(methods=["pgd", "autoattack"], eps=[0.0, 16 / 255], steps=5, n=64, batch_size=64,
                      checks=False)  # fmt: skip
    results = {(r.method, r.eps): r for r in attack_checkpoint(ckpt, sample_for(ckpt, n=64), plan)}
    aa, pgd = results[("autoattack", 16 / 255)], results[("pgd", 16 / 255)]
    assert aa.clean_acc > 0.2 and aa.robust_acc < aa.clean_acc
    assert aa.robust_acc <= pgd.robust_acc + C.noise(aa.robust_acc, pgd.robust_acc, 64)
    assert aa.components == TINY_AA and results[("autoattack", 0.0)].components == TINY_AA
    assert results[("autoattack", 0.0)].robust_acc == aa.clean_acc
    assert aa.attack == "AutoAttack (standard)" and aa.steps is None and aa.pgd_variant is None
    assert pgd.components is None


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_perturbation_stays_in_the_eps_ball_and_in_pixel_range(trained: dict[str, Path]) -> None:
    ckpt = load_checkpoint(trained["chans"])
    sample = sample_for(ckpt, n=32)
    for spec in (AttackSpec("fgsm", 8 / 255), AttackSpec("pgd", 8 / 255, steps=3)):
        adv = perturb(ckpt.model, spec, sample.images, sample.labels, num_classes=10, seed=1)
        assert (adv - sample.images).abs().max() <= 8 / 255 + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
        assert not torch.equal(adv, sample.images)
        again = perturb(ckpt.model, spec, sample.images, sample.labels, num_classes=10, seed=1)
        assert torch.equal(adv, again)  # seeded: PGD's random start is reproducible


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attacking_leaves_weights_mode_layout_and_global_rng_untouched(trained: dict[str, Path]) -> None:
    ckpt, source = load_checkpoint(trained["chans"]), load_checkpoint(trained["full"])
    ckpt.model.train()
    before = {k: v.clone() for k, v in ckpt.model.state_dict().items()}
    state = torch.random.get_rng_state()
    plan = AttackPlan(methods=["pgd"], n=32, checks=False)
    attack_checkpoint(ckpt, sample_for(ckpt, n=32), plan, source=source, channels_last=True)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in ckpt.model.state_dict().items())
    # the attack runs on a channels-last, eval-mode copy: the caller's models keep their mode and layout
    assert ckpt.model.training and not source.model.training
    for model in (ckpt.model, source.model):
        assert all(p.is_contiguous() for p in model.parameters())


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_samples_are_paired_across_checkpoints(trained: dict[str, Path]) -> None:
    a, b = load_checkpoint(trained["chans"]), load_checkpoint(trained["full"])
    sa, sb = sample_for(a, n=64, seed=3), sample_for(b, n=64, seed=3)
    assert torch.equal(sa.images, sb.images) and torch.equal(sa.labels, sb.labels)
    assert not torch.equal(sample_for(a, n=64, seed=4).labels, sa.labels)


class _Masked(nn.Module):
    """Quantises its input to 4 grey levels: gradients vanish, so gradient attacks see nothing."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 3) / 3)


@pytest.mark.slow  # fast sibling: test_check_functions_fail_on_bad_curves
def test_masking_checks_flag_a_model_with_masked_gradients(trained: dict[str, Path]) -> None:
    honest = load_checkpoint(trained["full"])
    masked = Checkpoint(honest.path, _Masked(honest.model).eval(), honest.meta)
    plan = AttackPlan(methods=["fgsm"], eps=[4 / 255, 16 / 255], n=128, batch_size=64, large_eps_steps=3)
    results = attack_checkpoint(masked, sample_for(masked), plan, source=honest)
    flags = results[0].flags
    assert "large_eps_to_chance" in flags  # no gradient, so even ε = 0.5 changes nothing
    assert "transfer_not_stronger" in flags  # examples from the honest model do get through
    assert results[0].robust_acc == results[0].clean_acc


def test_check_functions_fail_on_bad_curves() -> None:
    assert not C.eps0_is_clean(0.8, 0.79).passed and C.eps0_is_clean(0.8, 0.8).passed
    assert not C.monotone_in_eps({0.0: 0.5, 0.01: 0.2, 0.02: 0.6}, 1000).passed
    assert C.monotone_in_eps({0.0: 0.5, 0.01: 0.2, 0.02: 0.205}, 1000).passed  # within noise
    worse = C.pgd_beats_fgsm({0.01: 0.3}, {0.01: 0.5}, 1000, "PGD-2 (α=ε, no random start)")
    assert not worse.passed and "PGD-2 (α=ε, no random start) 50.0% > FGSM 30.0%" in worse.detail
    assert C.pgd_beats_fgsm({0.01: 0.3}, {0.01: 0.28}, 1000, "PGD-2").passed
    assert not C.large_eps_to_chance(0.6, 0.5, 10).passed and C.large_eps_to_chance(0.05, 0.5, 10).passed
    named = C.large_eps_to_chance(0.05, 0.5, 10, attack="PGD-10 (α=0.25ε, random start)")
    assert named.detail.startswith("PGD-10 (α=0.25ε, random start): 5.0% at ε=0.5")
    assert not C.transfer_not_stronger({0.01: 0.6}, {0.01: 0.2}, 1000).passed


# --- adversarial training ------------------------------------------------------------------------------
@pytest.mark.slow  # two runs; fast: the crafting test
def test_adversarial_training_runs_and_eps0_equals_clean_training(tmp_path: Path) -> None:
    clean = read_tensors(train(tiny_config(), tmp_path / "clean").checkpoint)
    zero = read_tensors(train(tiny_config(adv="fgsm", adv_eps=0.0), tmp_path / "zero").checkpoint)
    adv = train(tiny_config(adv="pgd", adv_eps="8/255", adv_steps=2, learn="chans"), tmp_path / "pgd")
    moved = read_tensors(adv.checkpoint)
    assert all(torch.equal(clean[k], zero[k]) for k in clean)  # FGSM at ε = 0 is clean training
    assert any(not torch.equal(clean[k], moved[k]) for k in clean if k in moved)
    assert load_checkpoint(adv.checkpoint).meta["config"]["adv"] == "pgd"


def test_adv_config_is_checked() -> None:
    assert tiny_config(adv_eps="2/255").adv_eps == pytest.approx(2 / 255)
    with pytest.raises(ConfigError, match="adv"):
        tiny_config(adv="cw")
    with pytest.raises(ConfigError, match=r"adv_eps must be in \[0, 1\]"):
        tiny_config(adv_eps=3)


def test_adversarial_training_crafts_with_madrys_pgd_whatever_attacks_default() -> None:
    """`adv: pgd` keeps its documented attack (α = 2.5 adv_eps / adv_steps, uniform random start), not the
    paper's Eq. 4 reading that `spatialmix attack` defaults to; an explicit adv_alpha keeps the random start."""
    spec = adversary(tiny_config(adv="pgd", adv_eps="8/255", adv_steps=4))
    assert spec is not None and (spec.pgd_variant, spec.random_start) == ("madry", True)
    assert (
        spec.step_size == pytest.approx(2.5 * (8 / 255) / 4) and spec.name == "PGD-4 (α=0.625ε, random start)"
    )
    given = adversary(tiny_config(adv="pgd", adv_eps="8/255", adv_alpha="1/255"))
    assert given is not None and given.step_size == pytest.approx(1 / 255) and given.random_start is True
    assert adversary(tiny_config()) is None


def test_recipe_attack_section_is_validated() -> None:
    recipe = parse_recipe(
        {"base": {"dataset": "synthetic"}, "attack": {"method": ["fgsm", "pgd"], "eps": ["1/255"]}}
    )
    assert recipe.attack is not None and recipe.attack.eps == pytest.approx([1 / 255])
    with pytest.raises(ConfigError, match=r"attack: unknown key 'stepz'.*did you mean 'steps'"):
        parse_recipe({"base": {}, "attack": {"stepz": 2}}, "r.yaml")
    with pytest.raises(ConfigError, match="unknown attack method 'cw'"):
        parse_recipe({"base": {}, "attack": {"method": "cw"}}, "r.yaml")


# --- the command ---------------------------------------------------------------------------------------
FIELDS = {
    "checkpoint",
    "learn",
    "filters",
    "method",
    "attack",
    "eps",
    "steps",
    "alpha",
    "random_start",
    "pgd_variant",
    "components",
    "n",
    "clean_acc",
    "robust_acc",
    "flags",
    "seed",
}


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attack_cli_json_lines_for_several_checkpoints(cli, trained: dict[str, Path], tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(trained["chans"].parent, run_dir)
    res = cli("attack", run_dir, trained["full"], "--method", "fgsm,pgd", "--eps", "1/255,4/255", "--n", "64",
              "--no-checks", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    lines = json_lines(res.stdout)
    assert len(lines) == 2 * 2 * 2
    assert all(
        FIELDS <= set(line) and line["n"] == 64 and 0 <= line["robust_acc"] <= line["clean_acc"] <= 1
        for line in lines
    )
    assert {line["learn"] for line in lines} == {"chans", "full"}
    assert {line["steps"] for line in lines if line["method"] == "pgd"} == {2}
    assert {line["attack"] for line in lines} == {"FGSM", "PGD-2 (α=ε, no random start)"}
    assert {line["pgd_variant"] for line in lines} == {None, "paper"}
    assert "robust accuracy" in res.stderr and "1/255" in res.stderr
    saved = json_lines((run_dir / "attacks.jsonl").read_text())  # results kept in the run directory
    assert len(saved) == 4 and all(s["learn"] == "chans" for s in saved)


@pytest.mark.parametrize(
    "args, message",
    [(["--eps", "abc"], "--eps must be a number"), (["--eps=-1/255"], r"\[0, 1\]"), (["--eps", "2"], r"\[0, 1\]"),
     (["--method", "cw"], "unknown attack method"), (["--n", "0"], "--n must be >= 1"),
     (["--pgd-variant", "papr"], "--pgd-variant: unknown PGD variant 'papr' .did you mean 'paper'.")],
)  # fmt: skip
@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attack_cli_bad_input_is_one_line_exit_2(
    cli, trained: dict[str, Path], args: list[str], message: str
) -> None:
    res = cli("attack", trained["chans"], *args)
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error:")
    assert re.search(message, res.stderr)


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attack_cli_pgd_steps_2_is_the_papers_pgd2(cli, trained: dict[str, Path]) -> None:
    """The design card's `spatialmix attack --method pgd --steps 2`: Eq. 4 twice, α = ε, no random start."""
    res = cli("attack", trained["chans"], "--method", "pgd", "--steps", "2", "--eps", "4/255", "--n", "16",
              "--no-checks", "--json", "--no-save")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    (line,) = json_lines(res.stdout)
    assert line["attack"] == "PGD-2 (α=ε, no random start)" and line["pgd_variant"] == "paper"
    assert line["alpha"] == pytest.approx(line["eps"]) and line["random_start"] is False
    assert "PGD-2 (α=ε, no random start)" in res.stderr  # the table names the variant too


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attack_cli_pgd_variant_madry_and_overrides(cli, trained: dict[str, Path]) -> None:
    base = ("attack", trained["chans"], "--method", "pgd", "--eps", "4/255", "--n", "16", "--no-checks", "--json",
            "--no-save", "--pgd-variant", "madry")  # fmt: skip
    (madry,) = json_lines(cli(*base).stdout)
    assert madry["attack"] == "PGD-2 (α=1.25ε, random start)" and madry["pgd_variant"] == "madry"
    assert madry["alpha"] == pytest.approx(1.25 * 4 / 255) and madry["random_start"] is True
    (given,) = json_lines(cli(*base, "--alpha", "1/255", "--no-random-start").stdout)
    assert given["attack"] == "PGD-2 (α=1/255, no random start)"
    assert given["alpha"] == pytest.approx(1 / 255) and given["random_start"] is False


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_attack_reads_checkpoints_and_train_records_from_stdin(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`spatialmix train ... --json | spatialmix attack - --json`: a run record's checkpoint is attacked,
    beside a path given on the command line; an empty stdin is one clear error."""
    from typer.testing import CliRunner

    from spatialmix_cli.cli.app import app

    monkeypatch.chdir(tmp_path)
    record = json.dumps({"run_dir": str(trained["full"].parent), "checkpoint": str(trained["full"])})
    args = [
        "attack",
        "-",
        str(trained["chans"]),
        "--method",
        "fgsm",
        "--n",
        "16",
        "--no-checks",
        "--json",
        "--no-save",
    ]
    res = CliRunner().invoke(app, args, input=f"{record}\n", catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert [r["checkpoint"] for r in json_lines(res.stdout)] == [str(trained["full"]), str(trained["chans"])]
    res = CliRunner().invoke(app, ["attack", "-"], input="\n", catch_exceptions=False)
    assert res.exit_code == 2 and "no checkpoints given (stdin had none)" in res.stderr and res.stdout == ""


def test_attack_cli_missing_checkpoint(cli, tmp_path: Path) -> None:
    res = cli("attack", tmp_path / "nope.safetensors")
    assert res.exit_code == 2 and "checkpoint not found" in res.stderr and res.stdout == ""
    res = cli("attack")
    assert res.exit_code == 2 and "at least one checkpoint" in res.stderr


def test_attack_recipe_trains_missing_runs_then_attacks_them(cli, tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "name: tiny\nout: runs/tiny\n"
        "base: {arch: convmixer, width: 8, depth: 1, kernel: 3, patch: 4, dataset: synthetic, subset: 128,"
        " test_subset: 64, epochs: 1, batch_size: 64, device: cpu, logger: none}\n"
        "sweep: {learn: [full, chans]}\n"
        "attack: {method: fgsm, eps: [1/255], n: 32, checks: false}\n"
    )
    res = cli("attack", "--recipe", recipe, "--json")
    assert res.exit_code == 0, res.stderr
    lines = json_lines(res.stdout)
    assert [line["learn"] for line in lines] == ["full", "chans"] and all(line["n"] == 32 for line in lines)
    assert (tmp_path / "runs/tiny/learn-chans/attacks.jsonl").is_file()
    again = cli("attack", "--recipe", recipe, "--eps", "2/255", "--json")  # trained runs are reused
    assert "already finished" in again.stderr and json_lines(again.stdout)[0]["eps_label"] == "2/255"


def _tiny_attack_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\npaper: test\ndescription: tiny\nbase: {arch: convmixer, width: 8, depth: 1, kernel: 3, "
        "patch: 4, dataset: synthetic, subset: 64, test_subset: 32, epochs: 1, batch_size: 32, device: cpu, "
        "logger: none}\n"
        "sweep: {seed: [0]}\nattack: {method: fgsm, eps: [1/255], n: 16, batch_size: 16, checks: false}\n"
    )
    return recipe


def test_attack_recipe_out_sets_the_run_root_and_needs_a_recipe(cli, tmp_path: Path) -> None:
    recipe = _tiny_attack_recipe(tmp_path)
    result = cli("attack", "--recipe", recipe, "--out", tmp_path / "elsewhere", "--json")
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert Path(line["checkpoint"]).is_relative_to(tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "seed-0" / "attacks.jsonl").is_file()
    bad = cli("attack", tmp_path / "elsewhere" / "seed-0", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "--out goes with --recipe" in bad.stderr


@pytest.mark.slow  # the trained pair (~8 s); fast: test_attack_specs, the attack-recipe tests
def test_results_carry_per_image_correctness_that_matches_the_accuracy(trained: dict[str, Path]) -> None:
    """robust_correct (hex, bit i = image i) lets a report pair two checkpoints image by image."""
    from spatialmix_cli.attacks.robustness import bits_to_hex, hex_to_bits

    ckpt = load_checkpoint(trained["chans"])
    sample = sample_for(ckpt, n=48)
    plan = AttackPlan(methods=["fgsm"], eps=[0.0, 8 / 255], n=48, batch_size=48, checks=False)
    for r in attack_checkpoint(ckpt, sample, plan):
        bits = hex_to_bits(r.robust_correct, r.n)
        assert len(bits) == 48 and sum(bits) / 48 == pytest.approx(r.robust_acc)
    mask = torch.tensor([True, False, False, True, True] + [False] * 60 + [True])
    assert hex_to_bits(bits_to_hex(mask), mask.numel()) == mask.tolist()


def test_a_recipe_over_run_records_without_weights_keeps_them(cli, tmp_path: Path) -> None:
    """The committed reproduction keeps run records without weights: training them again or losing their
    attack lines would waste an hour; `attack --recipe` (and `train --recipe`) must leave them be, so that
    later work can add seeds to a recipe."""
    recipe = _tiny_attack_recipe(tmp_path)
    first = cli("attack", "--recipe", recipe, "--out", tmp_path / "runs", "--json")
    assert first.exit_code == 0, first.stderr
    run = tmp_path / "runs" / "seed-0"
    (run / "model.safetensors").unlink()
    (run / "last.safetensors").unlink(missing_ok=True)
    lines_before = (run / "attacks.jsonl").read_text()
    trained = cli("train", "--recipe", recipe, "--out", tmp_path / "runs", "--json")
    assert trained.exit_code == 0 and json_lines(trained.stdout)[0]["skipped"] is True
    again = cli("attack", "--recipe", recipe, "--out", tmp_path / "runs", "--json")
    assert again.exit_code == 0, again.stderr
    assert "run record without weights" in again.stderr and again.stdout.strip() == ""
    assert (run / "attacks.jsonl").read_text() == lines_before and not (run / "model.safetensors").exists()
