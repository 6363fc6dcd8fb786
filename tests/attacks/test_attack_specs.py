"""What each attack is, exactly: spec names, PGD's two readings (Madry's and the paper's Eq. 4), the standard
AutoAttack's composition read off its torchattacks objects, names rebuilt for old result rows, and the
masking checks' cache keyed by the whole spec. Untrained tiny ConvMixers (width 8, depth 1), n ≤ 8."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from spatialmix_cli import create_model
from spatialmix_cli.attacks import (
    AttackSpec,
    Sample,
    attack_checkpoint,
    attack_name,
    build_attack,
    components,
    perturb,
    robustness,
)
from spatialmix_cli.attacks import checks as C
from spatialmix_cli.attacks.registry import ATTACKS
from spatialmix_cli.config.attack import METHODS, AttackPlan
from spatialmix_cli.config.numbers import format_eps
from spatialmix_cli.config.recipes import parse_recipe
from spatialmix_cli.data.info import DatasetInfo
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.store.checkpoint import Checkpoint

STANDARD = [
    {"name": "APGD-CE", "steps": 100, "restarts": 1},
    {"name": "APGD-T", "steps": 100, "restarts": 1, "target_classes": 9},
    {"name": "FAB-T", "steps": 100, "restarts": 1, "target_classes": 9},
    {"name": "Square", "queries": 5000, "restarts": 1, "p_init": 0.8, "resc_schedule": False},
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a loaded 2-core machine two threads make
    each of AutoAttack's thousands of small ops wait for the slower core (0.2 s becomes 20 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(num_classes: int = 3, size: int = 16) -> Checkpoint:
    """An untrained ConvMixer-8/1 (k3 p4) wrapped as a checkpoint of a made-up ``size``² dataset."""
    kwargs = dict(width=8, depth=1, kernel=3, patch=4, num_classes=num_classes)
    model = create_model("convmixer", **kwargs).eval()
    info = DatasetInfo("synthetic", 3, size, num_classes, (0.5,) * 3, (0.25,) * 3, crop_pad=0, hflip=False)
    meta = {"model": {"name": "convmixer", "kwargs": kwargs}, "dataset": info.to_dict(), "config": {}}
    return Checkpoint(Path("tiny.safetensors"), model, meta)


def own_labels(ckpt: Checkpoint, n: int = 8, seed: int = 0) -> Sample:
    """Random images labelled by the model itself, so all ``n`` are clean-correct. The head is first
    centred and scaled on their pooled features (an untrained ConvMixer gives nearly the same logits for
    every image), so the labels vary and a few /255 of perturbation flips them."""
    size, model = ckpt.info.image_size, ckpt.model
    images = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        features = model.pool(model.forward_features(images)).flatten(1)
        model.head.weight.div_(features.std(0))
        model.head.bias.copy_(-model.head.weight @ features.mean(0))
        labels = model(images).argmax(1)
    return Sample("synthetic", images, labels, seed)


# --- names ---------------------------------------------------------------------------------------------
def test_the_registry_and_the_config_name_the_same_attacks() -> None:
    """``config.attack.METHODS`` (names and help, torch-free) and ``attacks.registry.ATTACKS`` (labels and
    builders) list the same methods, in the same order."""
    assert list(METHODS) == list(ATTACKS)


@pytest.mark.parametrize(
    "spec, name",
    [
        (AttackSpec("fgsm", 1 / 255), "FGSM"),
        (AttackSpec("pgd", 1 / 255), "PGD-2 (α=ε, no random start)"),
        (AttackSpec("pgd", 1 / 255, pgd_variant="madry"), "PGD-2 (α=1.25ε, random start)"),
        (AttackSpec("pgd", 1 / 255, 10, pgd_variant="madry"), "PGD-10 (α=0.25ε, random start)"),
        (AttackSpec("pgd", 1 / 255, 3, pgd_variant="madry"), "PGD-3 (α=2.5ε/3, random start)"),
        (AttackSpec("pgd", 0.5, 10, 0.001, False), "PGD-10 (α=0.001, no random start)"),
        (AttackSpec("pgd", 0.5, 2, 2 / 255, pgd_variant="paper"), "PGD-2 (α=2/255, no random start)"),
        (AttackSpec("pgd", 0.5, 2, random_start=True, pgd_variant="paper"), "PGD-2 (α=ε, random start)"),
        (AttackSpec("autoattack", 8 / 255), "AutoAttack (standard)"),
        (AttackSpec("autoattack-fast", 8 / 255), "AutoAttack-fast (torchattacks, 10 iterations)"),
    ],
)  # fmt: skip
def test_every_attack_names_itself_exactly(spec: AttackSpec, name: str) -> None:
    assert spec.name == name
    assert spec.label == f"{name} ε={format_eps(spec.eps)}"


def test_pgd_variants_set_step_size_and_start_unless_given() -> None:
    madry, paper = AttackSpec("pgd", 0.1, 4, pgd_variant="madry"), AttackSpec("pgd", 0.1, 4)
    assert (madry.step_size, madry.random_start) == (pytest.approx(0.0625), True)
    assert (paper.step_size, paper.random_start, paper.pgd_variant) == (0.1, False, "paper")  # the default
    given = AttackSpec("pgd", 0.1, 4, 0.02, True, pgd_variant="paper")
    assert (given.step_size, given.random_start) == (0.02, True)
    with pytest.raises(ConfigError, match="unknown PGD variant 'madri'.*paper, madry"):
        AttackSpec("pgd", 0.1, pgd_variant="madri")


def test_old_rows_get_the_same_names_as_new_ones() -> None:
    specs = [AttackSpec("fgsm", 2 / 255), AttackSpec("pgd", 2 / 255), AttackSpec("pgd", 2 / 255, 7, random_start=False),
             AttackSpec("pgd", 2 / 255, pgd_variant="madry"), AttackSpec("pgd", 2 / 255, 7, pgd_variant="madry"),
             AttackSpec("pgd", 0.5, 10, 0.001, False), AttackSpec("pgd", 0.0, 2, 0.001), AttackSpec("pgd", 0.0),
             AttackSpec("pgd", 0.0, pgd_variant="madry")]  # fmt: skip
    for spec in specs:  # what attack_checkpoint wrote before rows carried their name
        pgd = spec.method == "pgd"
        row = {"method": spec.method, "eps": spec.eps, "steps": spec.steps if pgd else None,
               "alpha": spec.step_size if pgd else None, "random_start": spec.random_start if pgd else None}  # fmt: skip
        assert attack_name(row) == spec.name
        assert attack_name({**row, "attack": "anything recorded"}) == "anything recorded"
    assert attack_name({"method": "pgd", "eps": 1 / 255, "steps": 2}) == "PGD-2 (α=1.25ε, random start)"
    old_aa = {"method": "autoattack", "eps": 8 / 255, "steps": None, "alpha": None, "random_start": None}
    assert attack_name(old_aa) == "AutoAttack-fast (torchattacks, 10 iterations)"


# --- PGD: the paper's Eq. 4 ----------------------------------------------------------------------------
def _eq4(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int):
    """x ← clip(x + α·sign ∇ₓ CE, x − ε, x + ε) ∩ [0, 1], from the clean image."""
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.clamp(x + torch.clamp(adv - x, -eps, eps), 0, 1)
    return adv


@pytest.mark.parametrize(
    "spec, alpha",
    [(AttackSpec("pgd", 0.05, 2, pgd_variant="paper"), 0.05),
     (AttackSpec("pgd", 0.05, 3, 0.01, False, pgd_variant="madry"), 0.01)],
)  # fmt: skip
def test_pgd_paper_variant_is_eq4_iterated_from_the_clean_image(spec: AttackSpec, alpha: float) -> None:
    ckpt = tiny()
    sample = own_labels(ckpt)
    adv = perturb(ckpt.model, spec, sample.images, sample.labels, num_classes=3, seed=0)
    expected = _eq4(ckpt.model, sample.images, sample.labels, spec.eps, alpha, spec.steps)
    assert torch.allclose(adv, expected, rtol=0, atol=1e-6)
    assert not torch.equal(adv, sample.images)


# --- AutoAttack ----------------------------------------------------------------------------------------
def test_autoattack_is_the_standard_composition() -> None:
    model = tiny(100).model
    assert (
        components(build_attack(model, AttackSpec("autoattack", 8 / 255), num_classes=100, seed=0))
        == STANDARD
    )
    assert (
        components(build_attack(tiny(10).model, AttackSpec("autoattack", 8 / 255), num_classes=10, seed=0))
        == STANDARD
    )
    few = components(build_attack(tiny(4).model, AttackSpec("autoattack", 8 / 255), num_classes=4, seed=0))
    assert [c.get("target_classes") for c in few] == [None, 3, 3, None]  # min(9, classes - 1)
    fast = components(build_attack(model, AttackSpec("autoattack-fast", 8 / 255), num_classes=100, seed=0))
    assert [c["name"] for c in fast] == ["APGD-CE", "APGD-T", "FAB-T", "Square"]
    assert [c.get("steps") for c in fast[:3]] == [10, 10, 10] and fast[1]["target_classes"] == 99
    assert fast[3]["resc_schedule"] is True
    for method in ("fgsm", "pgd"):
        assert components(build_attack(model, AttackSpec(method, 8 / 255), num_classes=100, seed=0)) is None


def test_autoattack_needs_four_classes() -> None:
    ckpt = tiny(3)
    plan = AttackPlan(methods=["fgsm", "autoattack-fast"], n=8, batch_size=8)
    with pytest.raises(ConfigError, match=r"AutoAttack-fast .* needs at least 4 classes"):
        attack_checkpoint(ckpt, own_labels(ckpt), plan)


@pytest.mark.slow  # minutes; fast sibling: test_attacks.py::test_autoattack_wiring_with_a_tiny_composition
def test_standard_autoattack_run_is_at_least_as_strong_as_pgd_and_says_what_ran() -> None:
    """At 8/255 APGD-CE fools all 8 images, so FAB-T and Square's 5000 queries never run (fast)."""
    ckpt = tiny(4)
    plan = AttackPlan(
        methods=["pgd", "autoattack"],
        eps=[0.0, 8 / 255],
        steps=5,
        pgd_variant="madry",
        n=8,
        batch_size=8,
        checks=False,
    )
    results = {(r.method, r.eps): r for r in attack_checkpoint(ckpt, own_labels(ckpt), plan)}
    aa, pgd = results[("autoattack", 8 / 255)], results[("pgd", 8 / 255)]
    assert aa.clean_acc == 1.0 and aa.robust_acc < 1.0
    assert aa.robust_acc <= pgd.robust_acc + C.noise(aa.robust_acc, pgd.robust_acc, 8)
    expected = [dict(c, target_classes=3) if "target_classes" in c else c for c in STANDARD]
    assert aa.components == expected and results[("autoattack", 0.0)].components == expected
    assert results[("autoattack", 0.0)].robust_acc == 1.0
    assert aa.attack == "AutoAttack (standard)" and aa.steps is None and aa.pgd_variant is None
    assert pgd.components is None and pgd.attack == "PGD-5 (α=0.5ε, random start)"
    assert (pgd.pgd_variant, pgd.random_start, pgd.alpha) == ("madry", True, pytest.approx(0.5 * 8 / 255))


# --- results and the masking checks --------------------------------------------------------------------
def test_check_cache_tells_attacks_apart_by_step_size_and_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Main PGD-10 at ε = 0.5 with α = 0.001 and no random start shares (method, ε, steps) with the
    large-ε check's Madry PGD-10; both must run."""
    seen: list[AttackSpec] = []
    real = robustness.correct_under_attack

    def counting(target, spec, *args, **kwargs):
        seen.append(spec)
        return real(target, spec, *args, **kwargs)

    monkeypatch.setattr(robustness, "correct_under_attack", counting)
    ckpt = tiny(3)
    plan = AttackPlan(methods=["pgd"], eps=[0.5], steps=10, alpha=0.001, random_start=False, n=8, batch_size=8,
                      large_eps=0.5, large_eps_steps=10)  # fmt: skip
    (result,) = attack_checkpoint(ckpt, own_labels(ckpt), plan)
    ten = {(s.alpha, s.random_start) for s in seen if s.method == "pgd" and s.eps == 0.5 and s.steps == 10}
    assert len(ten) == 2
    assert len(seen) == len(set(seen))  # and nothing ran twice
    check = result.checks["large_eps_to_chance"]
    assert check["detail"].startswith("PGD-10 (α=0.25ε, random start): ") and check["passed"]
    assert result.attack == "PGD-10 (α=0.001, no random start)" and result.random_start is False
    assert "PGD-10 (α=0.001, no random start)" in result.checks["pgd_beats_fgsm"]["detail"]
    assert result.checks["monotone_in_eps"]["detail"].startswith("PGD-10 (α=0.001, no random start): ")


def test_plan_key_pgd_variant_reaches_specs_and_is_checked() -> None:
    recipe = parse_recipe(
        {"base": {"dataset": "synthetic"}, "attack": {"pgd_variant": "paper", "method": "pgd"}}
    )
    assert recipe.attack is not None and recipe.attack.pgd_variant == "paper"
    spec = AttackSpec.from_plan(recipe.attack, "pgd", 1 / 255)
    assert (spec.step_size, spec.random_start) == (1 / 255, False)
    plan = recipe.attack.updated({"random_start": True, "alpha": "1/255"}, "option")
    assert AttackSpec.from_plan(plan, "pgd", 0.5).name == "PGD-2 (α=1/255, random start)"
    # the paper's PGD-2 unless a plan says otherwise
    default = AttackSpec.from_plan(AttackPlan(), "pgd", 1 / 255)
    assert (default.name, default.step_size, default.random_start) == (
        "PGD-2 (α=ε, no random start)",
        1 / 255,
        False,
    )
    with pytest.raises(
        ConfigError, match=r"attack.pgd_variant: unknown PGD variant 'papers'.*did you mean 'paper'"
    ):
        parse_recipe({"base": {}, "attack": {"pgd_variant": "papers"}}, "r.yaml")
    with pytest.raises(ConfigError, match="attack.pgd_variant must be one of paper, madry"):
        AttackPlan.from_dict({"pgd_variant": 2})
