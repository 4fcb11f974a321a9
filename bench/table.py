"""The paper-shaped tables, built from the records of one or many machines (renderers live in report.py).

- latency: rows = models in the paper's order; columns = params and sizes (ours per format beside
  the paper's), the paper's three timing columns, the authors' TF graph, then one column per
  machine x backend (x precision where not fp32, x threads where several) with the per-image
  median at batch 1 and the speed-up over the paper's i7;
- throughput: images/s at every batch size above 1;
- backends: one row per machine x backend with its status, device, the precision it really ran
  and, when it did not run, why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edgefer.bench.authors import AuthorsTiming
from edgefer.bench.paper import (
    AUTHORS_TF_MS,
    PAPER_MACHINES,
    SPEEDUP_BASE,
    paper_order,
    paper_row,
)
from edgefer.bench.records import BenchResult, Record

FORMAT_NAMES = {"onnx": "ONNX", "openvino": "IR", "tensorrt": "engine", "safetensors": "safetensors"}
INVALID_MARK = "†"


@dataclass(frozen=True)
class Value:
    """A table cell: the text a reader sees, and the number a spreadsheet gets (None: text only)."""

    text: str
    number: float | None = None


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Value]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)  # right-aligned columns


@dataclass(frozen=True)
class Column:
    machine: str
    backend: str
    precision: str
    threads: int
    batch: int


@dataclass
class _Sheet:
    """All records of all machines, keyed for lookups, with the machine labels made unique."""

    records: list[tuple[str, Record]]
    models: list[Record]  # one record per model, in paper order (for name, paper name, params)

    @classmethod
    def of(cls, results: Iterable[BenchResult]) -> _Sheet:
        results = list(results)
        labelled = [(label, r) for label, result in zip(machine_labels(results), results, strict=True)
                    for r in result.records if not r.frame]  # whole-frame cells have their own table
        first = {}
        for _, r in labelled:
            first.setdefault(r.model, r)
        models = sorted(first.values(), key=lambda r: (paper_order(r.model), -r.params))
        return cls(labelled, models)

    @property
    def machines(self) -> list[str]:
        return list(dict.fromkeys(m for m, _ in self.records))

    def columns(self, batch_filter) -> list[Column]:
        """Columns with at least one attempted (measured or failed) cell, in first-seen order."""
        keys = [Column(m, r.backend, r.precision, r.threads, r.batch) for m, r in self.records
                if batch_filter(r.batch) and r.status in ("ok", "invalid", "failed")]
        return list(dict.fromkeys(keys))

    def find(self, model: str, column: Column) -> Record | None:
        for machine, r in self.records:
            if (r.model, machine, r.backend, r.precision, r.threads, r.batch) == (
                    model, column.machine, column.backend, column.precision, column.threads, column.batch):
                return r
        return None


def machine_labels(results: list[BenchResult]) -> list[str]:
    """Each result's machine name, made unique: a second "laptop" becomes "laptop (2)"."""
    labels, seen = [], {}
    for result in results:
        name = result.machine.name
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels


def latency_table(results: Iterable[BenchResult], title: str = "Per-image latency at batch 1",
                  authors: AuthorsTiming | None = None) -> Table:
    """``authors``: the authors' graph timed in one run with bare ONNX Runtime (tools/time_authors_graph.py);
    without it the authors' column is the constant AUTHORS_TF_MS from another machine, labelled so."""
    results = list(results)
    sheet = _Sheet.of(results)
    columns = sheet.columns(lambda b: b == 1)
    labels = _labels(columns, sheet)
    sizes = _size_keys(sheet)
    accuracy = any(r.accuracy is not None for _, r in sheet.records)  # --data: top-1 beside each speed
    timed = [h for lab in labels for h in ([f"{lab} ms", f"{lab} top-1"] if accuracy else [f"{lab} ms"])]
    headers = ["model", "paper", "params", "paper MB", *[_size_label(k) for k in sizes],
               *[f"paper {m} ms" for m in PAPER_MACHINES],
               "authors' TF ms (measured)" if authors else "authors' TF ms (fallback constant)", *timed]
    ends = _end_to_end_columns(results)
    headers += [f"{machine} end-to-end {size} {detector} ms" for machine, size, detector in ends]
    table = Table(title, headers, numeric=set(range(2, len(headers))))
    authors_ms = authors.at(1).tf_ms if authors and authors.at(1) else AUTHORS_TF_MS
    for model in sheet.models:
        row = _latency_row(sheet, model, sizes, columns, table.notes, accuracy, authors_ms)
        table.rows.append(row + [_end_to_end_cell(results, model.model, key) for key in ends])
    table.notes += _authors_note(sheet, authors)
    if ends:
        table.notes.append("end-to-end: one whole frame with one face through detection, crop and classification "
                           "(decode excluded), MicroExpNet on ONNX Runtime, 1 thread; frames/s in brackets "
                           "(the Whole frames table has every cell)")
    return table


def _frame_records(results: Iterable[BenchResult]) -> list[tuple[str, Record]]:
    results = list(results)
    return [(label, r) for label, result in zip(machine_labels(results), results, strict=True)
            for r in result.records if r.frame]


def _end_to_end_columns(results: Iterable[BenchResult]) -> list[tuple[str, str, str]]:
    """(machine, frame, detector) of each measured 1-thread ONNX Runtime whole-frame cell."""
    return list(dict.fromkeys((m, r.frame, r.detector) for m, r in _frame_records(results)
                              if r.measured and r.threads == 1 and r.backend == "onnxruntime"))


def _end_to_end_cell(results, model: str, key: tuple[str, str, str]) -> Value:
    """The end-to-end ms (fps) of a frame cell, on MicroExpNet's rows (the model the frame cells run)."""
    if paper_row(model) is None or paper_row(model).model != "p12-xxs":
        return Value("-")
    record = next((r for m, r in _frame_records(results) if (m, r.frame, r.detector) == key
                   and r.measured and r.threads == 1 and r.backend == "onnxruntime"), None)
    if record is None:
        return Value("-")
    return Value(f"{format_ms(record.timing.median)} ({record.fps:,.0f} fps)", record.timing.median)


def frames_table(results: Iterable[BenchResult]) -> Table | None:
    """Whole frames end to end: one row per machine x frame x detector x backend x threads."""
    records = _frame_records(results)
    if not records:
        return None
    headers = ["machine", "frame", "detector", "backend", "threads", "fps", "ms/frame", "detect ms", "crop ms",
               "classify ms", "detection share", "stream fps (detect every 5)", "stream ids"]
    table = Table("Whole frames, end to end (decode excluded)", headers, numeric=set(range(4, len(headers))))
    for machine, r in records:
        if not r.measured:
            cells = [_status_cell(r, table.notes)] + [Value("-")] * (len(headers) - 6)
        else:
            stages = r.stages_ms or {}
            cells = [Value(f"{r.fps:,.0f}" + _invalid_mark(r, table.notes), r.fps),
                     Value(format_ms(r.timing.median), r.timing.median)]
            cells += [_number(stages.get(k), "{:.3f}") for k in ("detect", "crop", "classify")]
            cells += [_number(r.detection_share, "{:.0%}"),
                      _number(r.stream_fps, "{:,.0f}"), _number(r.stream_ids, "{:d}")]
        table.rows.append([Value(machine), Value(r.frame), Value(r.detector), Value(r.backend),
                           Value(str(r.threads), r.threads), *cells])
    return table


def _latency_row(sheet: _Sheet, model: Record, sizes, columns: list[Column], notes: list[str],
                 accuracy: bool, authors_ms: float = AUTHORS_TF_MS) -> list[Value]:
    row = paper_row(model.model)
    base = row.ms.get(SPEEDUP_BASE) if row else None
    cells = [Value(model.model), Value(row.name if row else "-"), Value(f"{model.params:,}", model.params),
             _number(row.size_mb if row else None, "{:.2f}")]
    cells += [_number(_size_mb(sheet, model.model, key), "{:.3f}") for key in sizes]
    cells += [_number(row.ms.get(m) if row else None, "{:.2f}") for m in PAPER_MACHINES]
    cells.append(_number(authors_ms if row and row.model == "p12-xxs" else None, "{:.3f}"))
    for column in columns:
        record = sheet.find(model.model, column)
        cells.append(_latency_cell(record, base, notes))
        if accuracy:
            top1 = record.accuracy if record else None
            cells.append(Value("-") if top1 is None else Value(f"{top1:.1%}", top1))
    return cells


def _latency_cell(record: Record | None, base: float | None, notes: list[str]) -> Value:
    if record is None:
        return Value("-")
    if not record.measured:
        return _status_cell(record, notes)
    ms = record.per_image_ms
    text = format_ms(ms) + (f" ({base / ms:.1f}×)" if base and ms else "")
    return Value(text + _invalid_mark(record, notes), ms)


def throughput_table(results: Iterable[BenchResult]) -> Table | None:
    sheet = _Sheet.of(results)
    columns = sheet.columns(lambda b: b > 1)
    if not columns:
        return None
    labels = _labels(columns, sheet, batch=True)
    table = Table("Throughput (images/s) at batch > 1", ["model", "params", *[f"{lab} img/s" for lab in labels]],
                  numeric=set(range(1, len(labels) + 2)))
    for model in sheet.models:
        cells = [Value(model.model), Value(f"{model.params:,}", model.params)]
        for column in columns:
            record = sheet.find(model.model, column)
            if record is None or not record.measured:
                cells.append(_status_cell(record, table.notes) if record else Value("-"))
            else:
                ips = record.throughput_ips
                cells.append(Value(f"{ips:,.0f}" + _invalid_mark(record, table.notes), ips))
        table.rows.append(cells)
    return table


def backends_table(results: Iterable[BenchResult]) -> Table:
    """One row per machine x backend: what ran, on which device, in which precision, or why not."""
    sheet = _Sheet.of(results)
    table = Table("Backends", ["machine", "backend", "status", "device", "runs as", "reason"])
    groups: dict[tuple[str, str], list[Record]] = {}
    for machine, r in sheet.records:
        groups.setdefault((machine, r.backend), []).append(r)
    for (machine, backend), records in groups.items():
        counts = {}
        for r in records:
            counts[r.status] = counts.get(r.status, 0) + 1
        status = ", ".join(f"{s} {n}" for s, n in counts.items())
        devices = ", ".join(dict.fromkeys(_device(r) for r in records if r.device and r.measured)) or "-"
        runs_as = ", ".join(dict.fromkeys(r.runtime_precision for r in records if r.runtime_precision)) or "-"
        reasons = list(dict.fromkeys([r.reason for r in records if r.reason and r.status != "ok"]
                                     + [r.extra["fallback"] for r in records if r.extra.get("fallback")]))
        table.rows.append([Value(machine), Value(backend), Value(status), Value(devices), Value(runs_as),
                           Value("; ".join(reasons)[:300] or "")])
    return table


def _device(record: Record) -> str:
    """The device a record ran on; a GPU backend that ran on CPU (--allow-fallback) says so."""
    return f"{record.device} (CPU fallback)" if record.extra.get("fallback") else record.device


def best_cpu(records: Iterable[Record], model: str = "p12-xxs") -> Record | None:
    """The fastest valid CPU record of ``model`` at batch 1, one thread, fp32 (the authors' setting)."""
    from edgefer.bench.catalog import BY_NAME

    candidates = [r for r in records if r.model == model and r.status == "ok" and r.batch == 1
                  and r.threads == 1 and r.precision == "fp32" and r.backend in BY_NAME
                  and not BY_NAME[r.backend].gpu]
    return min(candidates, key=lambda r: r.per_image_ms, default=None)


def _authors_note(sheet: _Sheet, authors: AuthorsTiming | None = None) -> list[str]:
    if authors is not None and authors.at(1) is not None:
        return _measured_authors_note(sheet, authors)
    notes = []
    for machine in sheet.machines:
        best = best_cpu(r for m, r in sheet.records if m == machine)
        if best is None:
            continue
        where = f"on {machine}, " if len(sheet.machines) > 1 else ""
        notes.append("Fallback: the authors' column is a constant from another machine (time the graph here with "
                     "tools/time_authors_graph.py and pass the file with --authors). MicroExpNet: the authors' "
                     f"TensorFlow graph takes {AUTHORS_TF_MS * 1e3:.0f} µs per image (docs/authors-facts.md: 2-core "
                     f"AMD EPYC, 1 thread); {where}the best CPU backend, {best.backend} ({best.runtime_precision}, "
                     f"1 thread), takes {best.per_image_ms * 1e3:.1f} µs: {AUTHORS_TF_MS / best.per_image_ms:.1f}× "
                     "faster.")
    return notes


def _measured_authors_note(sheet: _Sheet, authors: AuthorsTiming) -> list[str]:
    notes = [f"MicroExpNet: {authors.summary()}."]
    tf_ms = authors.at(1).tf_ms
    for machine in sheet.machines:
        best = best_cpu(r for m, r in sheet.records if m == machine)
        if best is not None:
            notes.append(f"On {machine}, the best CPU backend at batch 1, {best.backend} ({best.runtime_precision}, "
                         f"1 thread), takes {best.per_image_ms * 1e3:.1f} µs: {tf_ms / best.per_image_ms:.1f}× the "
                         "authors' graph above (the bench and the timing file are separate runs; the timing file's "
                         "own ratio is the same-run one).")
    return notes


def _labels(columns: list[Column], sheet: _Sheet, batch: bool = False) -> list[str]:
    several_machines = len(sheet.machines) > 1
    several_threads = len({c.threads for c in columns}) > 1
    labels = []
    for c in columns:
        parts = [c.machine] if several_machines else []
        parts.append(c.backend)
        if c.precision != "fp32":
            parts.append(c.precision)
        if several_threads:
            parts.append(f"{c.threads}T")
        if batch:
            parts.append(f"b{c.batch}")
        labels.append(" ".join(parts))
    return labels


def _size_keys(sheet: _Sheet) -> list[tuple[str, str]]:
    keys = {_size_key(r) for _, r in sheet.records if r.size_mb}
    order = list(FORMAT_NAMES)
    return sorted(keys, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1] != "fp32", k[1]))


def _size_key(record: Record) -> tuple[str, str]:
    """(format, precision) of the file a record ran; torch runs the fp32 weights file in every precision."""
    return record.format, "fp32" if record.format == "safetensors" else record.precision


def _size_label(key: tuple[str, str]) -> str:
    fmt, precision = key
    name = FORMAT_NAMES.get(fmt, fmt)
    return f"{name} MB" if precision == "fp32" else f"{name} {precision} MB"


def _size_mb(sheet: _Sheet, model: str, key: tuple[str, str]) -> float | None:
    return next((r.size_mb for _, r in sheet.records if r.model == model and _size_key(r) == key and r.size_mb),
                None)


def _status_cell(record: Record, notes: list[str]) -> Value:
    if record.status == "failed":
        notes.append(f"{record.model} {record.backend} {record.precision} batch {record.batch}: "
                     f"failed: {record.reason}")
        return Value(f"failed [{len(notes)}]")
    return Value("n/a" if record.status == "unavailable" else "-")


def _invalid_mark(record: Record, notes: list[str]) -> str:
    if record.status != "invalid":
        return ""
    notes.append(f"{INVALID_MARK} {record.model} {record.backend} {record.precision} batch {record.batch}: "
                 f"INVALID: {record.reason}")
    return INVALID_MARK


def _number(value: float | None, fmt: str) -> Value:
    return Value("-") if value is None else Value(fmt.format(value), value)


def format_ms(ms: float) -> str:
    """Milliseconds with about three significant digits."""
    if ms < 1:
        return f"{ms:.3f}"
    return f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"
