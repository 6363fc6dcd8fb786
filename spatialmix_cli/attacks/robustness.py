"""Robust accuracy of checkpoints on one fixed, seeded sample of test images, with masking checks.

A sample counts as robust when it is classified correctly both clean and after the attack (as in
RobustBench), so robust accuracy never exceeds clean accuracy and ε = 0 must reproduce it exactly.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config.attack import AttackPlan
from ..config.banks import parse_bank, smooth_sigma_of
from ..config.numbers import format_eps
from ..config.runfiles import ATTACKS_FILE
from ..data import DatasetInfo, eval_batches, load_dataset
from ..errors import CheckpointError
from ..safefiles import append_lines
from ..seeding import derive_seed
from ..store.checkpoint import Checkpoint
from . import checks as C
from .build import components, perturb
from .registry import ATTACKS
from .spec import AttackSpec, check_classes

# (label of the attack pass, batches done, batches in the pass)
OnBatch = Callable[[str, int, int], None]


@dataclass
class Sample:
    """``n`` test images (float, [0, 1]) and labels, the same for every checkpoint of a dataset."""

    dataset: str
    images: torch.Tensor
    labels: torch.Tensor
    seed: int

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])


def load_sample(
    info: DatasetInfo,
    *,
    n: int,
    seed: int,
    data_dir: str | None = None,
    download: bool = True,
    image_size: int | None = None,
    device: torch.device | str = "cpu",
    hints: Sequence[str | None] = (),
) -> Sample:
    """The first ``n`` test images of a permutation seeded by ``seed`` (independent of any model).
    ``hints``: data folders a checkpoint or run names, looked in read-only (never downloaded into)."""
    if info.streamed:
        # torchvision (seconds to import) only for folder datasets: a tensor dataset's run skips it
        from ..data.imagefolder import check_classes, find_streamed, folder_eval_batches

        root = find_streamed(info.name, data_dir, hints)
        check_classes(root, info.classes)
        batches = folder_eval_batches(
            root,
            image_size=image_size or info.image_size,
            batch_size=250,
            device=torch.device("cpu"),
            subset=n,
            workers=None,  # the machine's default (loader_workers): no worker-count warning on 2 cores
        )
        pairs = list(batches)
        images, labels = torch.cat([b[0] for b in pairs]), torch.cat([b[1] for b in pairs])
    else:
        data = load_dataset(info.name, data_dir=data_dir, download=download, hints=hints)
        data = data.resized(info.image_size)
        order = torch.randperm(data.test_y.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        images, labels = data.test_x[order], data.test_y[order]
    return Sample(info.name, images.float().div(255).to(device), labels.to(device), seed)


@dataclass
class AttackResult:
    """One JSON line: a checkpoint under one attack at one ε."""

    checkpoint: str
    arch: str
    learn: str
    filters: str
    smooth_sigma: float | None
    adv_training: str
    method: str
    attack: str  # the exact attack without ε (AttackSpec.name), e.g. "PGD-2 (α=1.25ε, random start)"
    eps: float
    eps_label: str
    steps: int | None  # PGD only, as are alpha (pixel units), random_start and pgd_variant
    alpha: float | None
    random_start: bool | None
    pgd_variant: str | None
    n: int
    seed: int
    clean_acc: float
    robust_acc: float
    flags: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None
    transfer_acc: float | None = None
    components: list[dict[str, Any]] | None = None  # AutoAttack only: its sub-attacks as they were built
    # Per-image robust correctness on the sample, hex (image i = bit i): lets a report pair two checkpoints
    # image by image (McNemar), so the sampling error of a difference is exact rather than a bound.
    robust_correct: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predictions(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Predicted classes of clean ``images``. Outputs that are NaN or Inf (finite weights of absurd size
    overflow too) are a CheckpointError: an argmax of NaN is class 0, and an attack on it means nothing."""
    found = []
    with torch.no_grad():
        for x, _ in eval_batches(images, images, batch_size):
            logits = model(x)
            if not bool(torch.isfinite(logits).all()):
                raise CheckpointError(
                    "the model gives NaN or Inf outputs on clean test images (its weights are damaged, or so "
                    "large that they overflow); nothing was attacked"
                )
            found.append(logits.argmax(1))
    return torch.cat(found)


def correct_under_attack(
    target: nn.Module,
    spec: AttackSpec,
    sample: Sample,
    *,
    batch_size: int,
    num_classes: int,
    craft_on: nn.Module | None = None,
    on_batch: OnBatch | None = None,
    label: str = "",
    on_attack: Callable[[Any], None] | None = None,
) -> torch.Tensor:
    """Per-image correctness of ``target`` on adversarial images crafted on ``craft_on`` (default:
    ``target`` itself, a white-box attack). Batch ``i`` is attacked with seed ``derive_seed(seed, "attack", i)``;
    ``on_attack`` sees each batch's torchattacks object (see :func:`perturb`)."""
    source = craft_on if craft_on is not None else target
    out = []
    total = (sample.n + batch_size - 1) // batch_size
    for i, start in enumerate(range(0, sample.n, batch_size)):
        x = sample.images[start : start + batch_size]
        y = sample.labels[start : start + batch_size]
        adv = perturb(
            source,
            spec,
            x,
            y,
            num_classes=num_classes,
            seed=derive_seed(sample.seed, "attack", i),
            on_attack=on_attack,
        )
        with torch.no_grad():
            out.append(target(adv).argmax(1) == y)
        if on_batch is not None:
            on_batch(label or spec.label, i + 1, total)
    return torch.cat(out)


def _meta_fields(ckpt: Checkpoint) -> dict[str, Any]:
    config = ckpt.meta.get("config", {})
    bank = parse_bank(ckpt.filters)  # a row holds the bank's name and, for smooth, σ in a column of its own
    return {
        "checkpoint": str(ckpt.path),
        "arch": ckpt.meta["model"]["name"],
        "learn": ckpt.learn,
        "filters": bank.name,
        "smooth_sigma": smooth_sigma_of(bank),
        "adv_training": config.get("adv", "none"),
    }


class _Measured:
    """Robust accuracies of one model on one sample: each (spec, transfer or not) is attacked once (the
    whole spec is the key: α and random start matter too), keeping the white-box per-image masks and the
    AutoAttack components it saw."""

    def __init__(
        self,
        model: nn.Module,
        sample: Sample,
        clean: torch.Tensor,
        plan: AttackPlan,
        num_classes: int,
        on_batch: OnBatch | None,
    ) -> None:
        self.model, self.sample, self.clean, self.plan = model, sample, clean, plan
        self.num_classes, self.on_batch = num_classes, on_batch
        self.cache: dict[tuple[AttackSpec, bool], float] = {}
        self.masks: dict[AttackSpec, torch.Tensor] = {}  # white-box per-image robust correctness
        self.parts: dict[AttackSpec, list[dict[str, Any]] | None] = {}

    def acc(self, spec: AttackSpec, craft_on: nn.Module | None = None) -> float:
        key = (spec, craft_on is not None)
        if key in self.cache:
            return self.cache[key]
        label = f"{spec.label}{' (transfer)' if craft_on is not None else ''}"

        def seen(attack: Any) -> None:
            if craft_on is None:
                self.parts[spec] = components(attack)

        adv = correct_under_attack(
            self.model,
            spec,
            self.sample,
            batch_size=self.plan.batch_size,
            num_classes=self.num_classes,
            craft_on=craft_on,
            on_batch=self.on_batch,
            label=label,
            on_attack=seen,
        )
        self.cache[key] = _frac(self.clean & adv)
        if craft_on is None:
            self.masks[spec] = self.clean & adv
        return self.cache[key]


def attack_checkpoint(
    ckpt: Checkpoint,
    sample: Sample,
    plan: AttackPlan,
    *,
    source: Checkpoint | None = None,
    on_batch: OnBatch | None = None,
    channels_last: bool = True,
) -> list[AttackResult]:
    """Every (method, ε) of ``plan`` on ``ckpt``, plus the masking checks; one result per (method, ε),
    each carrying the checkpoint's failed checks in ``flags`` and all check details in ``checks``.
    ``channels_last``: run the models in the faster memory layout (CPU and GPU; the same numbers within
    float tolerance, see tests/training/test_fast_paths.py)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def prepared(m: nn.Module) -> nn.Module:  # a copy: the caller's model keeps its mode and memory layout
        return copy.deepcopy(m).eval().to(memory_format=layout)

    num_classes = ckpt.info.num_classes
    spec = functools.partial(AttackSpec.from_plan, plan)
    for method in plan.methods:  # before any work
        check_classes(spec(method, 0.0), num_classes)
    model = prepared(ckpt.model)
    try:
        clean = predictions(model, sample.images, plan.batch_size) == sample.labels
    except CheckpointError as exc:
        raise CheckpointError(f"{ckpt.path}: {exc}") from None
    measured = _Measured(model, sample, clean, plan, num_classes, on_batch)
    main = {(m, e): measured.acc(spec(m, e)) for m in plan.methods for e in plan.eps}
    transfer: dict[tuple[str, float], float] = {}
    if source is not None:
        source_model = prepared(source.model)
        for m, e in main:
            transfer[(m, e)] = measured.acc(_transfer_spec(plan, m, e), craft_on=source_model)
    clean_acc = _frac(clean)
    found = (
        _run_checks(plan, sample.n, clean_acc, main, transfer, measured.acc, num_classes)
        if plan.checks
        else []
    )
    common = {
        **_meta_fields(ckpt),
        "n": sample.n,
        "seed": sample.seed,
        "clean_acc": clean_acc,
        "flags": [c.name for c in found if not c.passed],
        "checks": {c.name: c.to_dict() for c in found},
        "source": str(source.path) if source is not None else None,
    }
    return [_result(common, spec(m, e), main[(m, e)], transfer.get((m, e)), measured) for m, e in main]


def _result(
    common: dict[str, Any], spec: AttackSpec, robust: float, transfer: float | None, measured: _Measured
) -> AttackResult:
    """One result row: the checkpoint's ``common`` fields and this spec's attack, accuracy and mask."""
    steps = spec.attack.uses_steps  # steps, α, start and variant are recorded for PGD-like attacks only
    return AttackResult(
        **common,
        method=spec.method,
        attack=spec.name,
        eps=spec.eps,
        eps_label=format_eps(spec.eps),
        steps=spec.steps if steps else None,
        alpha=spec.step_size if steps else None,
        random_start=spec.random_start if steps else None,
        pgd_variant=spec.pgd_variant if steps else None,
        robust_acc=robust,
        transfer_acc=transfer,
        components=measured.parts.get(spec),
        robust_correct=bits_to_hex(measured.masks[spec]),
    )


def _transfer_spec(plan: AttackPlan, method: str, eps: float) -> AttackSpec:
    """The transfer attack for a white-box ``method``: itself, but PGD for AutoAttack."""
    return AttackSpec.from_plan(plan, method if ATTACKS[method].gradient else "pgd", eps)


def _run_checks(
    plan: AttackPlan,
    n: int,
    clean_acc: float,
    main: dict[tuple[str, float], float],
    transfer: dict[tuple[str, float], float],
    acc: Callable[..., float],
    num_classes: int,
) -> list[C.Check]:
    spec = functools.partial(AttackSpec.from_plan, plan)
    gradient = [m for m in plan.methods if ATTACKS[m].gradient] or ["pgd"]
    found = [C.eps0_is_clean(clean_acc, acc(spec(gradient[0], 0.0)))]
    for method in plan.methods:
        curve = {e: a for (m, e), a in main.items() if m == method}
        if ATTACKS[method].gradient:
            curve[0.0] = acc(spec(method, 0.0))
        found.append(C.monotone_in_eps(curve, n, spec(method, 0.0).name))
    positive = [e for e in plan.eps if e > 0]
    fgsm = {e: acc(spec("fgsm", e)) for e in positive}
    k = max(plan.steps, 2)  # the plan's PGD (variant, α, start) with at least 2 steps
    pgd = {e: acc(replace(spec("pgd", e), steps=k)) for e in positive}
    found.append(C.pgd_beats_fgsm(fgsm, pgd, n, replace(spec("pgd", 0.0), steps=k).name))
    # Madry's PGD (α = 2.5 ε / steps, random start) whatever the plan's variant: the strongest cheap attack
    large = AttackSpec("pgd", plan.large_eps, plan.large_eps_steps, pgd_variant="madry")
    found.append(C.large_eps_to_chance(acc(large), plan.large_eps, num_classes, attack=large.name))
    if transfer:
        for method in plan.methods:
            white = {e: a for (m, e), a in main.items() if m == method and e > 0}
            moved = {e: a for (m, e), a in transfer.items() if m == method and e > 0}
            name, by = spec(method, 0.0).name, _transfer_spec(plan, method, 0.0).name
            found.append(
                C.transfer_not_stronger(white, moved, n, name if by == name else f"{name} (transfer: {by})")
            )
    return _merge(found)


def bits_to_hex(mask: torch.Tensor) -> str:
    """A boolean vector as a hex integer whose bit i is ``mask[i]`` (1000 images: 250 characters)."""
    value = 0
    for i in torch.nonzero(mask.flatten().cpu()).flatten().tolist():
        value |= 1 << i
    return f"{value:x}"


def hex_to_bits(text: str, n: int) -> list[bool]:
    """The inverse of :func:`bits_to_hex` for ``n`` images."""
    value = int(text, 16) if text else 0
    return [bool(value >> i & 1) for i in range(n)]


def _frac(mask: torch.Tensor) -> float:
    return int(mask.sum().item()) / max(int(mask.numel()), 1)


def _merge(found: list[C.Check]) -> list[C.Check]:
    """One entry per check name (a check run per method is failed if any run failed)."""
    merged: dict[str, C.Check] = {}
    for check in found:
        if check.name in merged:
            old = merged[check.name]
            check = C.Check(check.name, old.passed and check.passed, f"{old.detail} | {check.detail}")
        merged[check.name] = check
    return list(merged.values())


def record(run_dir: Path, results: list[AttackResult]) -> Path:
    """Append results to ``<run_dir>/attacks.jsonl`` (what ``spatialmix report`` reads): whole lines in one
    write that never follows a link (:func:`..safefiles.append_lines`)."""
    path = run_dir / ATTACKS_FILE
    append_lines(path, [json.dumps(r.to_dict()) for r in results])
    return path
