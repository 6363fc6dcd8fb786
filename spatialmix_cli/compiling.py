"""When to ``torch.compile`` the training forward: on, off, or automatically for runs long enough to pay.

Compiling costs 10-60 s on a CPU (ConvMixer-256/8: ≈10 s; a separable ResNet-20: ≈55 s) and pays back
only over many steps: on this project's 2-core benchmark machine it speeds a ConvMixer-256/8 ``chans``
step up 1.4× and a ``full`` step not at all (docs/bench/). So the default (``compile: null``, *auto*)
times the first eager steps and compiles only when the rest of the run would take longer than
:data:`AUTO_MIN_EAGER_S` eagerly — tests, demos and short sweeps points never pay the compile.
Inductor keeps compiled kernels in its on-disk cache (``TORCHINDUCTOR_CACHE_DIR``), so a second run of the
same model compiles faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from .errors import SpatialmixError

AUTO_MIN_EAGER_S = 600.0  # auto compiles when the remaining eager steps would take longer than this
PROBE_STEPS = 6  # eager steps timed before the automatic decision; the first interval is ignored


class CompileError(SpatialmixError):
    """``--compile`` was asked for and torch.compile failed (no C++ compiler, unsupported op...)."""

    exit_code = 1


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
                    "train with --no-compile (a CPU needs a C++ compiler for it)"
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
                f"(≈{step_s * remaining / 60:.0f} min); this step compiles. --no-compile turns this off"
            )
            self.compiled = torch.compile(self.module)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
