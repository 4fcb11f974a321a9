"""What a finished bench run means for its caller: the error it ends with (None when every cell is valid),
and a warning when the machine was too busy for its figures to be trusted."""

from __future__ import annotations

from edgefer.bench.machine import Machine
from edgefer.bench.records import BenchResult
from edgefer.errors import BackendUnavailable, EdgeferError, FallbackRefused, NothingMeasured, QualityError

#: A load average above this share of the cores means other work competed with the timed calls.
BUSY_LOAD_PER_CORE = 0.5


def bench_failure(result: BenchResult, named: bool) -> EdgeferError | None:
    """The error a run ends with, most serious first, or None when every cell was measured and valid.

    ``named``: the backends were named (not 'all'), so one that is unavailable here is an error; with
    'all' such a backend is only listed. A backend that refused to fall back to the CPU
    (FallbackRefused) is an error either way.
    """
    records = result.records
    refused = [r for r in records if r.status == "unavailable" and (named or r.fallback_refused)]
    if refused:
        names = ", ".join(dict.fromkeys(r.backend for r in refused))
        error = FallbackRefused if all(r.fallback_refused for r in refused) else BackendUnavailable
        return error(f"backend {names} unavailable here: {refused[0].reason}")
    invalid = [r for r in records if r.status == "invalid"]
    if invalid:
        first = invalid[0]
        return QualityError(f"{len(invalid)} of {len(records)} cells INVALID, e.g. {first.model} {first.backend} "
                            f"batch {first.batch}: {first.reason}")
    if not any(r.measured for r in records):
        return NothingMeasured("no cell could be measured (see the Backends table)")
    return None


def busy_warning(machine: Machine) -> str | None:
    """Other work on the machine inflates every figure: a warning saying so, or None (the load is in the
    records either way)."""
    busiest = max(machine.load_average[:1] + machine.load_average_end[:1], default=0.0)
    if busiest > BUSY_LOAD_PER_CORE * machine.cores:
        return (f"the machine was busy (load average up to {busiest:g} on {machine.cores} cores): "
                "the timings are likely inflated")
    return None
