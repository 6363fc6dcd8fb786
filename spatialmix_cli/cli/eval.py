"""``spatialmix eval``: clean test accuracy (or PSNR) of checkpoints, on the whole test set by default."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ..store.targets import expand_targets
from ..training.callbacks import EvalCallbacks
from . import options as opt
from .output import console, emit_json, pct, print_result, table

if TYPE_CHECKING:
    from ..store.checkpoint import Checkpoint
    from ..training.evaluate import EvalResult

# The library (torch and all) is imported inside the functions that use it: --help needs none of it.

N = Annotated[
    int | None,
    typer.Option(
        "--n", help="Test images (the first N of a fixed order).", show_default="the whole test set"
    ),
]
EvalBatch = Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass.")]


class _Printer(EvalCallbacks):
    """A JSON line per checkpoint as it is done (``--json``), or a progress line on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def on_checkpoint(self, ckpt: Checkpoint) -> None:
        if not self.as_json:
            console().print(f"evaluating {ckpt.path} ...")

    def on_result(self, result: EvalResult) -> None:
        if self.as_json:
            emit_json(result.to_dict())


EXAMPLES = opt.examples(
    "spatialmix eval runs/demo/* --json",
    "spatialmix eval runs/x/model.safetensors --n 1000 --device cuda",
    "spatialmix train --recipe recipes/demo.yaml --json | spatialmix eval - --json",
)  # the --help epilog


@opt.with_panels()
def eval_command(
    targets: opt.Targets,
    n: N = None,
    batch_size: EvalBatch = 500,
    device: opt.Device = None,
    data_dir: opt.DataDir = None,
    json_: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Clean test loss and accuracy (PSNR for un-shuffle checkpoints) of checkpoints: the whole test set
    by default, no attack machinery."""
    from ..commands.eval import evaluate_checkpoints

    paths = expand_targets(targets, sys.stdin)
    results = evaluate_checkpoints(
        paths,
        n=n,
        batch_size=batch_size,
        device=device or "auto",
        data_dir=data_dir,
        callbacks=_Printer(json_),
    )
    if not json_:
        rows = [
            [
                r.checkpoint,
                r.arch,
                r.learn,
                r.filters,
                r.dataset,
                r.n,
                r.loss,
                pct(r.acc) if r.task == "classify" else f"{r.psnr:.2f} dB",
            ]
            for r in results
        ]
        columns = ["checkpoint", "arch", "learn", "filters", "dataset", "n", "loss", "acc / PSNR"]
        print_result(table("clean test metrics", columns, rows), json_)
