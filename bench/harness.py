"""The timing loop: warm-up, then at least N calls and T seconds (capped), per-call times in nanoseconds.

The loop is as thin as Python allows: a pre-bound callable, ``perf_counter_ns`` before and after,
one list append. Anything the call needs (input arrays, output names) is bound before timing starts.
A run that reaches its cap before its minimum count or duration is kept but marked invalid
(MLPerf LoadGen's rule: report it, never pass it off as a valid result).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

#: Fewer samples than this and a percentile is not reported (LoadGen needs >= 64 for p90, ~100 for p99).
MIN_SAMPLES = {90: 64, 99: 100}


@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and measure one cell."""

    warmup_iters: int = 10
    warmup_seconds: float = 0.2
    min_iters: int = 100  # p99 needs 100 samples
    min_seconds: float = 1.0
    max_seconds: float = 20.0
    #: The tail percentiles the record must report; each needs MIN_SAMPLES[q] samples or the run is invalid.
    percentiles: tuple[int, ...] = (90, 99)

    def __post_init__(self) -> None:
        if self.min_iters < 1 or self.warmup_iters < 0:
            raise ValueError("min_iters must be >= 1 and warmup_iters >= 0")
        object.__setattr__(self, "percentiles", tuple(self.percentiles))  # a list when read back from JSON
        if not set(self.percentiles) <= set(MIN_SAMPLES):
            raise ValueError(f"percentiles {self.percentiles}: expected some of {sorted(MIN_SAMPLES)}")
        if not 0 <= self.min_seconds <= self.max_seconds:
            raise ValueError(f"need 0 <= min_seconds ({self.min_seconds}) <= max_seconds ({self.max_seconds})")


@dataclass(frozen=True)
class Timing:
    """Statistics of one measured cell, in milliseconds per call (one call = one batch)."""

    median: float
    p90: float | None
    p99: float | None
    mean: float
    std: float
    min: float
    max: float
    iterations: int
    seconds: float
    warmup_iterations: int
    warmup_seconds: float
    valid: bool
    invalid_reason: str = ""

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean)."""
        return self.std / self.mean if self.mean else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "cv": self.cv}


def measure(call: Callable[[], object], plan: TimingPlan) -> Timing:
    """Warm ``call`` up, then time it until the plan's minimums are met or its cap is reached."""
    warm_iters, warm_ns = _warm_up(call, plan)
    samples = _timed_loop(call, plan)
    return summarize(samples, plan, warm_iters, warm_ns / 1e9)


def _warm_up(call: Callable[[], object], plan: TimingPlan) -> tuple[int, int]:
    """At least ``warmup_iters`` calls and ``warmup_seconds``, never beyond a quarter of the cap."""
    clock = time.perf_counter_ns
    start = clock()
    need_ns, cap_ns = int(plan.warmup_seconds * 1e9), int(plan.max_seconds * 0.25e9)
    count = 0
    while count < plan.warmup_iters or clock() - start < need_ns:
        call()
        count += 1
        if clock() - start >= cap_ns:
            break
    return count, clock() - start


def _timed_loop(call: Callable[[], object], plan: TimingPlan) -> list[int]:
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    min_iters, min_ns, cap_ns = plan.min_iters, int(plan.min_seconds * 1e9), int(plan.max_seconds * 1e9)
    elapsed = 0
    while True:
        before = clock()
        call()
        took = clock() - before
        append(took)
        elapsed += took
        if elapsed >= cap_ns or (elapsed >= min_ns and len(samples) >= min_iters):
            return samples


def summarize(samples_ns: list[int], plan: TimingPlan, warmup_iterations: int = 0,
              warmup_seconds: float = 0.0) -> Timing:
    """Statistics of per-call times; invalid when the minimum count or duration was not reached, or when
    there are too few samples for a tail percentile the plan asks for."""
    import numpy as np

    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    seconds = float(ms.sum()) / 1e3
    reasons = []
    if len(ms) < plan.min_iters:
        reasons.append(f"{len(ms)} iterations < minimum {plan.min_iters}")
    if seconds < plan.min_seconds:
        reasons.append(f"{seconds:.2f} s < minimum {plan.min_seconds:g} s")
    capped = f" (cap {plan.max_seconds:g} s reached)" if reasons else ""
    reasons += [f"{len(ms)} samples < {MIN_SAMPLES[q]} needed for p{q}" for q in plan.percentiles
                if len(ms) < MIN_SAMPLES[q]]
    reason = "; ".join(reasons) + capped
    return Timing(
        median=float(np.median(ms)), p90=_percentile(ms, 90), p99=_percentile(ms, 99),
        mean=float(ms.mean()), std=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        min=float(ms.min()), max=float(ms.max()), iterations=len(ms), seconds=seconds,
        warmup_iterations=warmup_iterations, warmup_seconds=warmup_seconds,
        valid=not reasons, invalid_reason=reason)


def _percentile(ms, q: int) -> float | None:
    import numpy as np

    if len(ms) < MIN_SAMPLES[q]:
        return None
    value = float(np.percentile(ms, q))
    return value if math.isfinite(value) else None
