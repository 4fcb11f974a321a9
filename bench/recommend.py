"""Which backend x precision to use on a machine: the fastest valid one for latency and for throughput.

A record may be recommended only when it was measured and valid, passed its parity check against
PyTorch, ran on CPU or GPU as asked (no CPU fallback) and ran natively (no "-emulated" precision). The
best-precision table shows, per machine, model and backend, its fp32 figures beside those of its fastest
valid precision, so a precision that does not pay (INT8 on a CPU without int8 dot products) shows as
the measured ratio, and is not picked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edgefer.bench.records import BenchResult, Record
from edgefer.bench.table import Table, Value, format_ms, machine_labels


@dataclass(frozen=True)
class Pick:
    """The fastest valid record of one model for one goal: "latency" (batch 1) or "throughput"."""

    goal: str
    record: Record

    @property
    def figure(self) -> str:
        r = self.record
        if self.goal == "latency":
            return f"{format_ms(r.per_image_ms)} ms per image at batch 1"
        return f"{r.throughput_ips:,.0f} images/s at batch {r.batch}"

    def line(self) -> str:
        r = self.record
        return (f"{r.model}: fastest for {self.goal}: {r.backend} {r.precision} (runs as {r.runtime_precision}), "
                f"{r.threads} thread{'s' if r.threads > 1 else ''}: {self.figure}; {parity_text(r)}")


def parity_text(record: Record) -> str:
    p = record.parity
    if p is None:
        return "parity not measured"
    return f"parity vs PyTorch max |dp| {p.max_abs_diff:.1e}, top-1 {p.top1_agreement:.1%} on {p.samples} faces"


def usable(record: Record) -> bool:
    """Measured, valid, parity passed, native precision, on the device asked for."""
    return (record.status == "ok" and record.timing is not None and record.parity is not None
            and record.parity.passed and "emulated" not in record.runtime_precision
            and not record.extra.get("fallback"))


def recommend(records: Iterable[Record]) -> list[Pick]:
    """Per model, the fastest usable record at batch 1 (per-image median) and for throughput (any batch)."""
    picks = []
    by_model: dict[str, list[Record]] = {}
    for record in records:
        if usable(record):
            by_model.setdefault(record.model, []).append(record)
    for candidates in by_model.values():
        single = [r for r in candidates if r.batch == 1]
        if single:
            picks.append(Pick("latency", min(single, key=lambda r: r.per_image_ms)))
        picks.append(Pick("throughput", max(candidates, key=lambda r: r.throughput_ips or 0.0)))
    return picks


def best_precision_table(results: Iterable[BenchResult]) -> Table | None:
    """Per machine x model x backend: fp32 beside the backend's fastest usable precision, for latency (batch 1)
    and throughput (its largest batch), with the parity of that precision; None without any non-fp32 cell."""
    results = list(results)
    if not any(r.precision != "fp32" for result in results for r in result.records):
        return None
    headers = ["machine", "model", "backend", "fp32 ms (b1)", "best ms (b1)", "speed-up (fp32 ms ÷ best ms)",
               "fp32 img/s", "best img/s", "speed-up (best img/s ÷ fp32 img/s)", "parity of the best at b1"]
    table = Table("Each backend at its best precision beside fp32", headers, numeric={3, 4, 5, 6, 7, 8},
                  description="Per machine, model and backend: fp32 beside the fastest precision that is valid, "
                              "native and passed parity, at batch 1 (per-image median) and at the largest batch "
                              "(images/s); a speed-up below 1 means that precision does not pay here.")
    for label, result in zip(machine_labels(results), results, strict=True):
        groups: dict[tuple[str, str], list[Record]] = {}
        for r in result.records:
            if not r.frame:  # whole-frame cells have their own table
                groups.setdefault((r.model, r.backend), []).append(r)
        for (model, backend), records in groups.items():
            table.rows.append([Value(label), Value(model), Value(backend), *_pair(records, "latency"),
                               *_pair(records, "throughput"), Value(_best_parity(records))])
    return table


def _speed(record: Record, goal: str) -> float:
    """Images per second: at batch 1 from the per-image median (latency), else from the mean (throughput)."""
    return 1e3 / record.per_image_ms if goal == "latency" else record.throughput_ips or 0.0


def _pair(records: list[Record], goal: str) -> list[Value]:
    """fp32's figure, the best usable precision's figure (with its name) and the speed-up of the best."""
    top = 1 if goal == "latency" else max((r.batch for r in records), default=1)
    pool = [r for r in records if r.batch == top and usable(r) and (goal == "latency" or top > 1)
            and r.extra.get("mode", "latency") == "latency"]
    fp32 = max((r for r in pool if r.precision == "fp32"), key=lambda r: _speed(r, goal), default=None)
    best = max(pool, key=lambda r: _speed(r, goal), default=None)

    def shown(r: Record) -> tuple[str, float]:
        if goal == "latency":
            return format_ms(r.per_image_ms), r.per_image_ms
        return f"{r.throughput_ips:,.0f}", r.throughput_ips

    if best is None:
        return [Value("-"), Value("-"), Value("-")]
    fp32_cell = Value(*shown(fp32)) if fp32 else Value("-")
    best_text, best_number = shown(best)
    best_cell = Value(f"{best_text} ({best.precision})", best_number)
    if fp32 is None:
        return [fp32_cell, best_cell, Value("-")]
    ratio = _speed(best, goal) / _speed(fp32, goal)
    return [fp32_cell, best_cell, Value(f"{ratio:.2f}", ratio)]


def _best_parity(records: list[Record]) -> str:
    best = [r for r in records if usable(r) and r.batch == 1]
    if not best:
        return "-"
    fastest = min(best, key=lambda r: r.per_image_ms)
    return f"{fastest.precision}: {parity_text(fastest)}"


def slower_than_fp32(records: Iterable[Record]) -> list[str]:
    """Lines for measured non-fp32 records slower than fp32 on the same backend, batch and threads: the
    measured reason the recommendation did not pick them."""
    records = [r for r in records if r.status in ("ok", "invalid") and r.timing is not None and not r.frame]
    fp32 = {(r.model, r.backend, r.batch, r.threads): r for r in records if r.precision == "fp32"}
    lines = []
    for r in records:
        base = fp32.get((r.model, r.backend, r.batch, r.threads))
        if r.precision == "fp32" or base is None or not r.throughput_ips or not base.throughput_ips:
            continue
        ratio = r.throughput_ips / base.throughput_ips
        if ratio < 1:
            lines.append(f"{r.model} {r.backend} {r.precision} (runs as {r.runtime_precision}) at batch {r.batch}, "
                         f"{r.threads} thread{'s' if r.threads > 1 else ''}: {ratio:.2f}× the fp32 throughput")
    return lines
