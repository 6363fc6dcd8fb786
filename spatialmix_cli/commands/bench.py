"""Throughput benchmark: the project's training, evaluation and attack paths next to plain PyTorch
references on the same model.

The reference is what a researcher would write first: the same model definition, eager, channels-first,
``torch.optim.AdamW``, batches from a ``DataLoader`` over a CPU tensor dataset with per-sample
torchvision v2 crop + flip; evaluation through a ``DataLoader``; PGD-2 with plain torchattacks on the eager
model. The project's path is the trainer's: uint8 data held once on the device, batched on-device crop +
flip, channels-last memory format, the tuned allocator of ``allocator.py``, the training forward
compiled as the trainer's automatic rule does for a long run (on CUDA only; ``--compile`` /
``--no-compile`` force it; evaluation and the attack stay eager, as in the trainer and ``spatialmix attack``),
frozen spatial weights excluded from the optimizer and from autograd. Each side of a row runs in its own
fresh process (the reference with glibc's default allocator), and their steps are timed interleaved, one
at a time, end to end (data + step); medians over iterations."""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import platform
import resource
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from ..attacks.build import perturb
from ..attacks.spec import AttackSpec
from ..config.bench import BenchSettings
from ..config.coercion import OPTION
from ..config.train import TrainConfig
from ..data import TensorBatches
from ..data.info import dataset_info
from ..errors import ConfigError, check_choice
from ..layers import LEARN_MODES
from ..models import create_model, list_models
from ..safefiles import atomic_write_text, check_target
from ..training.allocator import tune_malloc
from ..training.compiling import CompileSwitch, auto_mode
from ..training.hardware import cpu_info
from ..training.loop import build_optimizer, train_step
from ..training.runtime import autocast, check_bf16, resolve_device, to_float, use_bf16
from ..training.tasks import Classify


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
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(batch_size, 3, 32, 32))
    return 3.0 * float(counter.get_total_flops())


KINDS = ("train", "eval", "attack")


@dataclass(frozen=True)
class _Inputs:
    """What both sides of a row start from: a model factory, the uint8 training images, and one float
    batch to attack."""

    make: Callable[[], nn.Module]
    images: torch.Tensor
    labels: torch.Tensor
    x_attack: torch.Tensor
    y_attack: torch.Tensor
    device: torch.device


def _reference_steps(inp: _Inputs, seed: int) -> dict[str, Callable[[], None]]:
    """The plain references, one step of each kind: training (DataLoader + per-sample v2 crop/flip +
    AdamW), evaluation (DataLoader) and PGD-2 (plain torchattacks), all on one eager channels-first
    model; batches are the size of the attack batch."""
    images, labels, device = inp.images, inp.labels, inp.device
    ref = inp.make()
    ref_opt = torch.optim.AdamW([p for p in ref.parameters() if p.requires_grad], lr=1e-3)
    batch_size = inp.x_attack.shape[0]
    ref_batches = _forever(
        DataLoader(
            _PerSampleAugment(images, labels),
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(seed),
        )
    )
    eval_loader = _forever(
        DataLoader(torch.utils.data.TensorDataset(images.float().div(255.0), labels), batch_size=batch_size)
    )
    plain = torchattacks.PGD(ref, eps=1 / 255, alpha=2.5 / 255 / 2, steps=2, random_start=True)

    def reference_train_step() -> None:
        ref.train()
        x, y = next(ref_batches)
        loss = F.cross_entropy(ref(x.to(device)), y.to(device))
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()

    def eval_step() -> None:
        ref.eval()
        x, _ = next(eval_loader)
        with torch.no_grad():
            ref(x.to(device))

    def attack_step() -> None:
        ref.eval()
        plain(inp.x_attack, inp.y_attack)

    return {"train": reference_train_step, "eval": eval_step, "attack": attack_step}


def _project_steps(
    preset: str, learn: str, inp: _Inputs, s: BenchSettings, model_kwargs: dict[str, Any]
) -> dict[str, Callable[[], None]]:
    """The project's paths, one step of each kind: training through the trainer's own ``train_step`` (uint8
    data on the device, batched crop + flip, channels-last, compiled as a long run is), eager
    evaluation as ``evaluate`` runs it, and PGD-2 as ``spatialmix attack`` runs it (``perturb`` on the
    channels-last eager model)."""
    cfg = TrainConfig.from_dict(
        {
            "arch": preset,
            "learn": learn,
            "dataset": "synthetic",
            "device": "cpu",
            "cpu_bf16": s.cpu_bf16,
            **{k: v for k, v in model_kwargs.items() if k in ("width", "depth", "kernel", "patch")},
        }
    )
    images, labels, device = inp.images, inp.labels, inp.device
    model = inp.make()
    channels_last = s.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, model)
    compile = s.compile if s.compile is not None else auto_mode(device) is None  # a long run's choice
    forward = CompileSwitch(model, compile, total_steps=2 * (s.warmup + s.iters) + 1)
    device_images = images.to(device)
    source = TensorBatches(
        device_images, labels.to(device), batch_size=s.batch_size, seed=s.seed, crop_pad=4, hflip=True
    )
    batches = itertools.chain.from_iterable(source.epoch(e) for e in itertools.count())
    starts = itertools.cycle(range(0, images.shape[0] - s.batch_size + 1, s.batch_size))
    spec = AttackSpec("pgd", 1 / 255, 2, None, True, pgd_variant="madry")  # the reference's PGD exactly
    bf16 = use_bf16(cfg, device)
    task = Classify()

    def project_train_step() -> None:
        model.train()
        x, y = next(batches)
        train_step(forward, opt, task, to_float(x, channels_last), y, device=device, bf16=bf16)

    def eval_step() -> None:
        model.eval()
        start = next(starts)
        with torch.inference_mode(), autocast(device, bf16):  # eager, as the trainer's evaluate()
            model(to_float(device_images[start : start + s.batch_size], channels_last))

    def attack_step() -> None:
        model.eval()
        perturb(model, spec, inp.x_attack, inp.y_attack, num_classes=10, seed=s.seed)

    return {"train": project_train_step, "eval": eval_step, "attack": attack_step}


def _timed(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _worker(
    conn: Connection, side: str, preset: str, learn: str, s: BenchSettings, model_kwargs: dict[str, Any]
) -> None:
    """One side of a row in its own process: waits for "build", then answers each request — a step kind
    ("train", "eval", "attack": its seconds) or "rss" (peak memory) — until "stop". The reference side
    keeps glibc's default allocator; the project side runs with the tuned one."""
    try:
        conn.recv()  # "build": the parent builds one side at a time, so nothing else runs meanwhile
        device = resolve_device(s.device)
        info = dataset_info("synthetic")
        images, labels = _data(s.batch_size * (s.iters + s.warmup + 1), s.seed)
        x_attack = images[: s.batch_size].float().div(255.0).to(device)
        y_attack = labels[: s.batch_size].to(device)

        def make() -> nn.Module:
            return create_model(
                preset,
                learn=learn,
                num_classes=10,
                mean=list(info.mean),
                std=list(info.std),
                seed=s.seed,
                **model_kwargs,
            ).to(device)

        inp = _Inputs(make, images, labels, x_attack, y_attack, device)
        ready: dict[str, float] = {}
        if side == "reference":
            steps = _reference_steps(inp, s.seed)
        else:
            tune_malloc(s.tune_malloc)
            steps = _project_steps(preset, learn, inp, s, model_kwargs)
            ready["first_step_s"] = _timed(steps["train"], device)  # the compile, when compiling
        conn.send(("ok", ready))
        while (request := conn.recv()) != "stop":
            conn.send(("ok", peak_rss_mib() if request == "rss" else _timed(steps[request], device)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class _Side:
    """The parent's handle on one worker process."""

    def __init__(self, side: str, preset: str, learn: str, s: BenchSettings, model_kwargs: dict[str, Any]):
        spawn = multiprocessing.get_context("spawn")
        self.side = side
        self.conn, child = spawn.Pipe()
        self.process = spawn.Process(
            target=_worker, args=(child, side, preset, learn, s, model_kwargs), daemon=True
        )
        self.process.start()

    def ask(self, request: str) -> Any:
        self.conn.send(request)
        status, value = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"bench {self.side} process failed:\n{value}")
        return value

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self.conn.send("stop")
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()


def bench_preset(
    preset: str, learn: str, s: BenchSettings, model_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row of bench.json: img/s of both paths for training, evaluation and PGD-2, and their ratios.
    ``model_kwargs`` go to ``create_model`` (the tests use them for a tiny model).

    The reference and the project's path each live in a fresh spawned process (neither inherits the
    other's heap, allocator settings or compiled code; ``peak_rss_mib`` is each side's own), and their
    steps are timed **interleaved**: reference step, project step, reference step, ... Only one process
    computes at a time, and a slow spell of this shared machine lands on both sides alike instead of on
    whichever ran during it (measured one after the other, the same command's ratio moved by ±25 %)."""
    extra = dict(model_kwargs or {})
    row: dict[str, Any] = {"preset": preset, "learn": learn, "batch_size": s.batch_size}
    flops = train_flops(create_model(preset, learn=learn, num_classes=10, seed=s.seed, **extra), s.batch_size)
    row["gflop_per_train_image"] = flops / s.batch_size / 1e9
    sides = [_Side(side, preset, learn, s, extra) for side in ("reference", "project")]
    try:
        ref, ours = sides
        ref.ask("build")
        row.update(ours.ask("build"))
        for kind in KINDS:
            times: dict[str, list[float]] = {"ref": [], "ours": []}
            for i in range(s.warmup + s.iters):
                for key, side in (("ref", ref), ("ours", ours)):
                    seconds = side.ask(kind)
                    if i >= s.warmup:
                        times[key].append(seconds)
            row[f"{kind}_ref_img_s"] = s.batch_size / statistics.median(times["ref"])
            row[f"{kind}_img_s"] = s.batch_size / statistics.median(times["ours"])
            row[f"{kind}_ratio_quartiles"] = _quartiles(
                [r / o for r, o in zip(times["ref"], times["ours"], strict=True)]
            )  # the spread of the paired per-step ratios: how far to trust the ratio of medians
        row["peak_rss_mib_ref"] = ref.ask("rss")
        row["peak_rss_mib"] = ours.ask("rss")
    finally:
        for side in sides:
            side.close()
    for kind in KINDS:
        row[f"{kind}_ratio"] = row[f"{kind}_img_s"] / row[f"{kind}_ref_img_s"]
    row["train_gflop_s"] = row["train_img_s"] * row["gflop_per_train_image"]
    if s.peak_gflops:
        row["train_pct_of_peak"] = 100 * row["train_gflop_s"] / s.peak_gflops
    return row


def _quartiles(values: list[float]) -> list[float]:
    """[q1, q3] of ``values`` (both the value itself for a single one)."""
    if len(values) < 2:
        return [values[0], values[0]]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [q1, q3]


def bench_rows(
    presets: list[str],
    modes: list[str],
    s: BenchSettings,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``bench_preset`` for every (preset, learn mode); each row's processes are its own."""
    rows = []
    for preset in presets:
        for mode in modes:
            rows.append(bench_preset(preset, mode, s, model_kwargs))
            if on_row is not None:
                on_row(rows[-1])
    return rows


def check_request(presets: list[str], modes: list[str], s: BenchSettings, out: Path, *, learn: str) -> None:
    """Refuse what cannot be measured before any row's process is spawned (``learn`` is the text the modes
    came from): unknown presets or learn modes, a missing GPU or bf16 units (clean errors here, not a
    worker's traceback), out-of-range settings, and a link at ``out`` (before the minutes of measuring)."""
    for name in presets:
        if name not in list_models():
            raise ConfigError(f"unknown preset '{name}'; `spatialmix train --list-models` lists them")
    if not modes:
        raise ConfigError(f"--learn needs at least one learn mode ({', '.join(LEARN_MODES)}), got {learn!r}")
    for mode in modes:
        check_choice("learn mode", mode, LEARN_MODES)
    s.validate(OPTION)  # settings built in code: each key's bounds, named by its option
    check_bf16(TrainConfig(cpu_bf16=s.cpu_bf16), resolve_device(s.device))
    check_target(out)


def write_bench(
    presets: list[str],
    modes: list[str],
    s: BenchSettings,
    out: Path,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure every (preset, learn mode) row and write bench.json to ``out``: the machine, the settings,
    the rows and the seconds it all took. Returns what it wrote."""
    started = time.perf_counter()
    rows = bench_rows(presets, modes, s, on_row=on_row)
    report = {
        "machine": machine(),
        "settings": asdict(s),
        "rows": rows,
        "seconds": time.perf_counter() - started,
    }
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    return report


def machine() -> dict[str, Any]:
    """What the numbers were measured on, CPU model and vector units included: ratios differ from one CPU to
    the next (docs/performance.md)."""
    cpu = cpu_info()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu.name,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the kernels ATen dispatches to
        "cpu_bf16": cpu.bf16,  # native bf16 arithmetic
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
