"""When to ``torch.compile`` the training forward: on, off, or automatically for long runs on a GPU.

Compiling pays back only over many steps, and on this project's 2-core benchmark CPU it did not pay at
all: interleaved A/B runs of a ConvMixer-256/8 ``chans`` training step, eager vs compiled, gave 66.1 vs
66.7 and 58.9 vs 59.8 img/s (``mode="max-autotune-no-cudagraphs"``: 65.0 vs 58.6), while the compile
itself takes 10-60 s (39 s with a cold inductor cache). So the default (``compile: null``, *auto*) never
compiles on a CPU; on CUDA, where fusing the element-wise work (GELU, BatchNorm) is the usual win, it times
the first eager steps and compiles when the rest of the run would take longer than
:data:`AUTO_MIN_EAGER_S` eagerly (no GPU was available to measure that here). ``compile: true`` forces it
anywhere (``train --set compile=true``, ``bench --compile``). Inductor keeps compiled kernels in its on-disk
cache (``TORCHINDUCTOR_CACHE_DIR``), so a second run of the same model compiles faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from ..errors import SpatialmixError

AUTO_MIN_EAGER_S = 600.0  # auto compiles when the remaining eager steps would take longer than this
PROBE_STEPS = 6  # eager steps timed before the automatic decision; the first interval is ignored


class CompileError(SpatialmixError):
    """Compiling was asked for (``compile: true``) and torch.compile failed (no C++ compiler, unsupported
    op...)."""

    exit_code = 1


def auto_mode(device: torch.device) -> bool | None:
    """What ``compile: null`` means on ``device``: decide from the first steps on CUDA (None), never on a
    CPU (False; see the module docstring for the measurements)."""
    return None if device.type == "cuda" else False


def should_compile(step_seconds: float, remaining_steps: int, min_eager_s: float = AUTO_MIN_EAGER_S) -> bool:
    """The automatic rule: compile when ``remaining_steps`` eager steps of ``step_seconds`` each would
    take longer than ``min_eager_s``."""
    return step_seconds * remaining_steps > min_eager_s


class CompileSwitch:
    """Calls ``module`` eagerly or compiled. ``mode`` True compiles at once, False never, None decides
    after :data:`PROBE_STEPS` calls from the median time between calls (one call per training step, so
    the interval is the whole step: data, forward, backward, optimizer).

    ``agree`` turns the local decision into a shared one (distributed: true if any rank says so), and
    ``note`` receives one human-readable line when an automatic decision to compile is taken or a
    compile fails. An automatic compile that fails falls back to eager with a note; an explicit one
    raises :class:`CompileError`.
    """

    def __init__(
        self,
        module: Callable[..., Any],
        mode: bool | None,
        *,
        total_steps: int,
        done_steps: int = 0,
        agree: Callable[[bool], bool] = lambda decision: decision,
        note: Callable[[str], None] = lambda text: None,
        min_eager_s: float = AUTO_MIN_EAGER_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.module = module
        self.mode = mode
        self.total_steps = total_steps
        self.done_steps = done_steps
        self.agree = agree
        self.note = note
        self.min_eager_s = min_eager_s
        self.clock = clock
        self.compiled: Callable[..., Any] | None = torch.compile(module) if mode else None
        self._calls = 0
        self._stamps: list[float] = []

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._calls += 1
        if self.mode is None and self._calls <= PROBE_STEPS + 1:
            self._probe()
        if self.compiled is None:
            return self.module(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:
            if self.mode:
                raise CompileError(
                    f"torch.compile failed ({type(exc).__name__}: {_first_line(exc)}); "
                    "train with --set compile=false (bench: --no-compile; a CPU needs a C++ compiler for it)"
                ) from exc
            self.compiled = None
            self.note(f"torch.compile failed ({type(exc).__name__}: {_first_line(exc)}); continuing eagerly")
            return self.module(*args, **kwargs)

    def _probe(self) -> None:
        """Record this call's time; after the last probe call, decide (every rank at the same call)."""
        self._stamps.append(self.clock())
        if len(self._stamps) < PROBE_STEPS + 1:
            return
        intervals = [b - a for a, b in zip(self._stamps, self._stamps[1:], strict=False)][1:]
        step_s = statistics.median(intervals)
        remaining = self.total_steps - self.done_steps - self._calls + 1
        if self.agree(should_compile(step_s, remaining, self.min_eager_s)):
            self.note(
                f"compiling the model (torch.compile): {remaining} steps left at {step_s:.2f} s each eagerly "
                f"(≈{step_s * remaining / 60:.0f} min); this step compiles. --set compile=false turns this "
                "off"
            )
            self.compiled = torch.compile(self.module)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
