"""Throughput benchmark: the project's training, evaluation and attack paths next to plain PyTorch
references on the same model.

The reference is what a researcher would write first: the same model definition, eager, channels-first,
``torch.optim.AdamW``, batches from a ``DataLoader`` over a CPU tensor dataset with per-sample
torchvision v2 crop + flip; evaluation through a ``DataLoader``; PGD-2 with plain torchattacks on the eager
model. The project's path is the trainer's: uint8 data held once on the device, batched on-device crop +
flip, channels-last memory format, the tuned allocator of ``allocator.py``, the training forward
``torch.compile``'d as the trainer's automatic rule does for any run longer than 10 eager minutes
(``--no-compile``: eager; evaluation and the attack stay eager, as in the trainer and ``spatialmix attack``),
frozen spatial weights excluded from the optimizer and from autograd. Each row runs in its
own process: every reference first, with glibc's default allocator, then the project's paths. Both are
timed end to end (data + step), median over iterations."""

from __future__ import annotations

import itertools
import multiprocessing
import platform
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from .allocator import tune_malloc
from .attacks.build import AttackSpec, perturb
from .compiling import CompileSwitch
from .config import TrainConfig
from .data import TensorBatches
from .data.info import dataset_info
from .models import create_model
from .training import _autocast, build_optimizer, resolve_device, to_float

DEFAULT_PRESETS = ("convmixer_256_8_k5_p2",)


@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = 128
    iters: int = 7
    warmup: int = 3  # the tuned allocator grows its heap over the first 2-3 steps, then never faults again
    device: str = "auto"
    compile: bool = True  # the training forward compiled, as `spatialmix train` runs any long run
    channels_last: bool = True  # the project path's memory format (the trainer's default)
    tune_malloc: bool = True  # the project path runs with allocator.tune_malloc (the reference never does)
    seed: int = 0
    peak_gflops: float | None = None  # the machine's peak, for the "% of peak" column (None: unknown)


def _median_seconds(step: Callable[[], None], iters: int, warmup: int, device: torch.device) -> float:
    times = []
    for i in range(warmup + iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class _PerSampleAugment(Dataset):
    """The reference's dataset: one uint8 image at a time through v2 RandomCrop + flip, then to float."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels
        self.transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]).float().div(255.0), self.labels[i]


def _forever(loader: DataLoader) -> Any:
    return itertools.chain.from_iterable(itertools.repeat(loader))


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(
        0, 10, (n,), generator=g
    )


def train_flops(model: nn.Module, batch_size: int) -> float:
    """FLOPs of one training step on a CIFAR-shaped batch: 3 × the forward FLOPs counted by PyTorch's
    FlopCounterMode (the usual convention: backward ≈ 2 × forward). Counting the backward directly is
    wrong here: the counter charges a depthwise conv's weight gradient like a dense conv's (7.6 instead
    of 0.86 GFLOP per image for ConvMixer-256/8)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(batch_size, 3, 32, 32))
    return 3.0 * float(counter.get_total_flops())


def _reference_img_s(
    make: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    x_attack: torch.Tensor,
    y_attack: torch.Tensor,
    median_img_s: Callable[[Callable[[], None]], float],
    device: torch.device,
    seed: int,
) -> dict[str, float]:
    """img/s of the plain references: training (DataLoader + per-sample v2 crop/flip + AdamW), evaluation
    (DataLoader) and PGD-2 (plain torchattacks), all on one eager channels-first model; batches are the
    size of the attack batch."""
    out: dict[str, float] = {}
    ref = make()
    ref_opt = torch.optim.AdamW([p for p in ref.parameters() if p.requires_grad], lr=1e-3)
    batch_size = x_attack.shape[0]
    ref_batches = _forever(DataLoader(_PerSampleAugment(images, labels), batch_size=batch_size,
                                      shuffle=True, drop_last=True,
                                      generator=torch.Generator().manual_seed(seed)))  # fmt: skip

    def ref_step() -> None:
        x, y = next(ref_batches)
        loss = F.cross_entropy(ref(x.to(device)), y.to(device))
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()

    ref.train()
    out["train_ref_img_s"] = median_img_s(ref_step)

    eval_loader = _forever(DataLoader(torch.utils.data.TensorDataset(images.float().div(255.0), labels),
                                      batch_size=batch_size))  # fmt: skip
    ref.eval()

    def ref_eval() -> None:
        x, _ = next(eval_loader)
        with torch.no_grad():
            ref(x.to(device))

    out["eval_ref_img_s"] = median_img_s(ref_eval)
    import torchattacks

    plain = torchattacks.PGD(ref, eps=1 / 255, alpha=2.5 / 255 / 2, steps=2, random_start=True)
    out["attack_ref_img_s"] = median_img_s(lambda: plain(x_attack, y_attack))
    return out


def bench_preset(
    preset: str, learn: str, s: BenchSettings, model_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row of bench.json: img/s of both paths for training, evaluation and PGD-2, and their ratios.
    ``model_kwargs`` go to ``create_model`` (the tests use them for a tiny model).

    Every reference is measured first, with glibc's default allocator, then the project's paths: once a
    process has run with the tuned allocator its heap stays warm (freed pages are reused without faults
    even after the defaults are restored), which would flatter the reference. ``bench_rows`` runs each
    row in a fresh process for the same reason."""
    extra = dict(model_kwargs or {})
    device = resolve_device(s.device)
    info = dataset_info("synthetic")
    images, labels = _data(s.batch_size * (s.iters + s.warmup + 1), s.seed)

    def make() -> nn.Module:
        return create_model(preset, learn=learn, num_classes=10, mean=list(info.mean), std=list(info.std),
                            seed=s.seed, **extra).to(device)  # fmt: skip

    def median_img_s(step: Callable[[], None]) -> float:
        return s.batch_size / _median_seconds(step, s.iters, s.warmup, device)

    row: dict[str, Any] = {"preset": preset, "learn": learn, "batch_size": s.batch_size}
    flops = train_flops(create_model(preset, learn=learn, num_classes=10, seed=s.seed, **extra), s.batch_size)
    row["gflop_per_train_image"] = flops / s.batch_size / 1e9
    tune_malloc(False)
    x_attack = images[: s.batch_size].float().div(255.0).to(device)
    y_attack = labels[: s.batch_size].to(device)
    spec = AttackSpec("pgd", 1 / 255, 2, None, True)

    # references first: plain PyTorch, glibc's default allocator (their objects are gone when it returns)
    row.update(_reference_img_s(make, images, labels, x_attack, y_attack, median_img_s, device, s.seed))
    row["peak_rss_mib_ref"] = peak_rss_mib()

    # ---------------- the project's paths (training mirrors training._run_epoch) ----------------
    tune_malloc(s.tune_malloc)
    cfg = TrainConfig.from_dict(
        {
            "arch": preset,
            "learn": learn,
            "dataset": "synthetic",
            "device": "cpu",
            **{k: v for k, v in extra.items() if k in ("width", "depth", "kernel", "patch")},
        }
    )
    model = make()
    channels_last = s.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, model)
    forward = CompileSwitch(model, s.compile, total_steps=s.warmup + s.iters + 1)
    device_images = images.to(device)
    source = TensorBatches(device_images, labels.to(device), batch_size=s.batch_size, seed=s.seed,
                           crop_pad=4, hflip=True)  # fmt: skip
    batches = itertools.chain.from_iterable(source.epoch(e) for e in itertools.count())

    def our_step() -> None:
        x, y = next(batches)
        with _autocast(device, cfg.bf16):
            loss = F.cross_entropy(forward(to_float(x, channels_last)).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    compile_start = time.perf_counter()
    our_step()  # with --compile, the first step compiles
    row["first_step_s"] = time.perf_counter() - compile_start
    row["train_img_s"] = median_img_s(our_step)

    starts = itertools.cycle(range(0, images.shape[0] - s.batch_size + 1, s.batch_size))
    model.eval()

    def our_eval() -> None:
        start = next(starts)
        with torch.inference_mode(), _autocast(device, cfg.bf16):  # eager, as the trainer's evaluate()
            model(to_float(device_images[start : start + s.batch_size], channels_last))

    row["eval_img_s"] = median_img_s(our_eval)
    # PGD-2 at 1/255 as `spatialmix attack` runs it: perturb() on the channels-last eager model (the
    # attack command does not compile).
    row["attack_img_s"] = median_img_s(
        lambda: perturb(model, spec, x_attack, y_attack, num_classes=10, seed=s.seed)
    )
    row["peak_rss_mib"] = peak_rss_mib()
    tune_malloc(False)

    for kind in ("train", "eval", "attack"):
        row[f"{kind}_ratio"] = row[f"{kind}_img_s"] / row[f"{kind}_ref_img_s"]
    row["train_gflop_s"] = row["train_img_s"] * row["gflop_per_train_image"]
    if s.peak_gflops:
        row["train_pct_of_peak"] = 100 * row["train_gflop_s"] / s.peak_gflops
    return row


def bench_rows(
    presets: list[str],
    modes: list[str],
    s: BenchSettings,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``bench_preset`` for every (preset, learn mode), each in a fresh spawned process: no row inherits
    another's heap, compiled code or peak memory (``peak_rss_mib`` is then the row's own)."""
    rows = []
    spawn = multiprocessing.get_context("spawn")
    for preset in presets:
        for mode in modes:
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                row = pool.submit(bench_preset, preset, mode, s, model_kwargs).result()
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
