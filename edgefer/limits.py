"""Bounds on the numbers a user passes (thread counts, batch sizes, durations), checked before any work.

A number out of range is an InputError naming the option, the value and the range (CLI exit 2):
``--threads 100000`` must not reach a runtime that would start 100,000 threads, and ``--duration nan``
must not reach a loop that never ends. The bounds are documented in the README:

- threads: 1 .. ``THREADS_PER_CORE`` x the logical cores this process may use;
- batch sizes: 1 .. ``MAX_BATCH``;
- floating-point options: finite, inside each option's own range.
"""

from __future__ import annotations

import math
import numbers
import os

from edgefer.errors import InputError

#: Threads beyond 4 per logical core only add contention; more is refused.
THREADS_PER_CORE = 4
#: The largest batch of crops edgefer runs or builds for (4096 teacher inputs are 4.4 GB of float32).
MAX_BATCH = 4096


def cores() -> int:
    """The logical cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def max_threads() -> int:
    return THREADS_PER_CORE * cores()


def check_threads(threads: object, name: str = "threads") -> int | None:
    """``threads`` (None: the runtime's default) if it is a whole number in 1 .. 4 x cores."""
    if threads is None:
        return None
    limit = max_threads()
    value = check_int(threads, name, 1, limit, why=f"{THREADS_PER_CORE} x the {cores()} cores here")
    return value


def check_int(value: object, name: str, low: int, high: int, why: str = "") -> int:
    """``value`` as an int if it is a whole number (not a bool) in ``low .. high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} {value} out of range: expected {low}..{high}" + (f" ({why})" if why else ""))
    return int(value)


def check_batch(value: object, name: str = "batch") -> int:
    return check_int(value, name, 1, MAX_BATCH)


def check_number(value: object, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number in ``low .. high`` (``low`` excluded with
    ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r}")
    number = float(value)
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        bound = f"{'above' if low_open else 'from'} {low:g} to {high:g}"
        raise InputError(f"{name} {value!r}: expected a finite number {bound}")
    return number


#: option -> (kind, low, high): the ranges of the training and study options (README "Limits").
#: kind "int", "float" (closed), "float>" (low excluded), "threads".
OPTION_BOUNDS: dict[str, tuple[str, float, float]] = {
    "epochs": ("int", 1, 1_000_000), "teacher_epochs": ("int", 1, 1_000_000),
    "batch_size": ("int", 1, MAX_BATCH), "max_batch": ("int", 1, MAX_BATCH), "min_iters": ("int", 1, 10_000_000),
    "folds": ("int", 2, 1000), "eval_every": ("int", 1, 1_000_000), "jobs": ("int", 1, 4096),
    "input_size": ("int", 75, 1024), "teacher_input_size": ("int", 75, 1024),
    "peak_frames": ("int", 1, 10_000), "neutral_frames": ("int", 0, 10_000),
    "seed": ("int", 0, 2**32 - 1), "split_seed": ("int", 0, 2**32 - 1),
    "lr": ("float>", 0.0, 10.0), "dropout": ("float", 0.0, 0.99), "temperature": ("float>", 0.0, 1000.0),
    "temperatures": ("float>", 0.0, 1000.0), "lam": ("float", 0.0, 1.0),
    "checkpoint_minutes": ("float", 0.0, 10_080.0), "duration": ("float", 0.0, 86_400.0),
    "max_seconds": ("float", 0.0, 86_400.0), "timeout": ("float", 1.0, 86_400.0),
    "threads": ("threads", 1, 0), "threads_per_run": ("int", 1, 1024),  # a Ray node may have more cores
    "camera": ("int", 0, 2**31 - 1), "detect_every": ("int", 1, 1_000_000),  # OpenCV's index is a C int
}


def check_options(values: dict[str, object]) -> None:
    """Check every option of ``values`` that OPTION_BOUNDS knows (None: not given); InputError names the
    option as the CLI spells it (``--batch-size``). A tuple is checked value by value."""
    for key, value in values.items():
        if key not in OPTION_BOUNDS or value is None or isinstance(value, str):  # lists are parsed first
            continue
        name = "--" + key.replace("_", "-")
        for item in value if isinstance(value, tuple) else (value,):
            kind, low, high = OPTION_BOUNDS[key]
            if kind == "threads":
                check_threads(item, name)
            elif kind == "int":
                check_int(item, name, int(low), int(high))
            else:
                check_number(item, name, low, high, low_open=kind == "float>")
    if isinstance(values.get("fold"), int) and isinstance(values.get("folds"), int):
        check_int(values["fold"], "--fold", 0, values["folds"] - 1, why=f"one of the {values['folds']} folds")
