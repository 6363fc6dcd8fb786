"""Option aliases shared by several commands (defined once, as huggingface_hub's CLI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
DataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="Dataset folder (torchvision layout). Default: $SPATIALMIX_DATA, ../shared/datasets, then download.",
        show_default=False,
    ),
]
Device = Annotated[
    str | None, typer.Option("--device", help="auto | cpu | cuda | cuda:N.", show_default=False)
]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Seed for init, filters, data order.", show_default=False)
]
Out = Annotated[
    Path | None, typer.Option("--out", help="Run directory (or root of a recipe's run directories).")
]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Images per step.", show_default=False)]
