"""``spatialmix info``: what a checkpoint is, from its metadata (no data loaded, no weights read)."""

from __future__ import annotations

import sys
from typing import Any

from rich.table import Table

from ..store.targets import expand_targets
from . import options as opt
from .output import emit_json, fmt, print_result, table

EXAMPLES = opt.examples(
    "spatialmix info runs/x",
    "spatialmix info runs/x/last.safetensors --json",
    "ls -d runs/demo/* | spatialmix info -",
)  # the --help epilog


@opt.with_panels()
def info_command(targets: opt.Targets, json_: opt.Json = False, debug: opt.Debug = False) -> None:
    """What a checkpoint is: model and arguments, learn mode, filters, dataset and classes, epochs
    trained, its run's result and the trainable / frozen parameters per layer type. Loads no data."""
    from ..commands.info import checkpoint_info

    records = [checkpoint_info(p) for p in expand_targets(targets, sys.stdin)]
    for record in records:
        if json_:
            emit_json(record)
        else:
            _print(record)


def _print(record: dict[str, Any]) -> None:
    params = record["params"]
    keys = [
        "kind",
        "arch",
        "task",
        "learn",
        "filters",
        "dataset",
        "source",
        "image_size",
        "classes",
        "class_names",
        "seed",
    ]
    rows = [[k, record[k]] for k in keys if record[k] is not None or k not in ("source", "class_names")]
    rows.append(["epochs trained", f"{record['epochs_trained']} of {record['epochs'] or '?'}"])
    rows += [["model kwargs", ", ".join(f"{k}={v}" for k, v in record["model_kwargs"].items())]]
    for name in ("test_acc", "test_psnr", "test_loss"):
        value = (record["result"] or {}).get(name, (record["metrics"] or {}).get(name))
        if value is not None:
            rows.append([name, value])
    fields = Table(title=record["checkpoint"], title_justify="left", show_header=False)
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    for name, value in rows:
        fields.add_row(name, fmt(value))
    print_result(fields, as_json=False)  # the tables are the result: stdout
    by_type = [[t, r["trainable"], r["frozen"]] for t, r in params["by_type"].items()]
    by_type.append(["total", params["params_trainable"], params["params_frozen"]])
    print_result(table("parameters", ["layer type", "trainable", "frozen"], by_type), as_json=False)
