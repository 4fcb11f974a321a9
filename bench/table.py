"""The tables of a bench run or report, one per question, built from the records of one or many machines.

- sizes: the deployable file of each format per model, beside the paper's checkpoint size;
- latency: per-image median at batch 1, rows = networks, columns = machine x backend, beside the paper's;
- speed-up: the paper's i7 figure divided by ours, labelled so;
- throughput: images/s at every batch size above 1 and in throughput mode (several requests in flight);
- distribution: every measured cell's median, p90, p99 and mean per call (batch 256 included);
- backends: one row per machine x backend with its cells counted by status, device, precision, reasons.

Machines are identified by a fingerprint (host name, CPU, GPUs): several runs of one machine merge
into one set of columns (the later run wins a cell measured twice). A bundled pretrained model
(microexpnet-ck) and its architecture (p12-xxs) are one network, hence one row. Renderers live in
report.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from edgefer.bench.authors import AuthorsTiming
from edgefer.bench.paper import AUTHORS_TF_MS, PAPER_MACHINES, SPEEDUP_BASE, network, paper_order, paper_row
from edgefer.bench.records import BenchResult, Record

FORMAT_NAMES = {"onnx": "ONNX", "openvino": "IR", "tensorrt": "engine", "safetensors": "safetensors"}
INVALID_MARK = "†"
#: What the cells of the tables that hold timings mean when they hold no number.
CELL_LEGEND = ("'-': not measured in these runs (that model, backend, precision or batch was not asked for); "
               "'n/a': the backend is not available on that machine; 'failed [k]': see note k; "
               f"{INVALID_MARK}: measured but INVALID (note says why)")
#: How images/s is computed in each bench mode (Record.throughput_ips, edgefer.bench.load).
IPS_LATENCY = "Latency-mode cells (one call at a time): batch × 1000 ÷ mean milliseconds per call"
IPS_THROUGHPUT = ("Throughput-mode cells ('throughput', several requests in flight at once): images completed by "
                  "all requests ÷ the wall time of the timed run")


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
    description: str = ""  # what the table answers and how to read its cells


@dataclass(frozen=True)
class Column:
    machine: str
    backend: str
    precision: str
    threads: int
    batch: int
    mode: str = "latency"


def machine_key(result: BenchResult) -> tuple[str, str, tuple[str, ...]]:
    """A machine's fingerprint: host (or --machine) name, CPU model and GPUs."""
    m = result.machine
    return m.name, m.cpu, tuple(m.gpus)


def machine_groups(results: Iterable[BenchResult]) -> list[tuple[str, list[BenchResult]]]:
    """Results grouped by machine fingerprint, in first-seen order, each with a unique label: the name, and
    the CPU (and GPU) beside it only when two different machines share a name."""
    groups: dict[tuple, list[BenchResult]] = {}
    for result in results:
        groups.setdefault(machine_key(result), []).append(result)
    names = [key[0] for key in groups]
    labels = []
    for key in groups:
        name, cpu, gpus = key
        label = name if names.count(name) == 1 else f"{name} ({', '.join((cpu, *gpus))})"
        labels.append(label)
    return list(zip(labels, groups.values(), strict=True))


def machine_labels(results: list[BenchResult]) -> list[str]:
    """Each result's machine label (see :func:`machine_groups`): runs of one machine share theirs."""
    labels = {machine_key(r): label for label, group in machine_groups(results) for r in group}
    return [labels[machine_key(r)] for r in results]


def _paper_row(net: str, model: Record):
    """The paper's row of a table row: by its network, or for a given file by the network its spec names."""
    return paper_row(net) or paper_row(model.extra.get("network", ""))


def _mode(record: Record) -> str:
    return record.extra.get("mode", "latency")


def _cell_key(record: Record) -> tuple:
    return network(record.model), record.backend, record.precision, record.threads, record.batch, _mode(record)


def _better(new: Record, old: Record | None) -> bool:
    """Which record of a cell measured twice (two runs, or microexpnet-ck and p12-xxs) the tables show:
    a measured one over one that is not, one with an accuracy figure, then the later one."""
    if old is None:
        return True
    return (new.measured, new.accuracy is not None) >= (old.measured, old.accuracy is not None)


@dataclass
class _Sheet:
    """All records of all machines, merged per machine fingerprint and per cell."""

    records: list[tuple[str, Record]]
    raw: list[tuple[str, Record]]  # every record of every run, unmerged (for counting)
    names: dict[str, list[str]]  # network -> the model names merged into its row
    networks: list[Record]  # one record per network, in paper order (for name, paper name, params)
    machines: list[str]

    @classmethod
    def of(cls, results: Iterable[BenchResult]) -> _Sheet:
        cells: dict[tuple, tuple[str, Record]] = {}
        raw: list[tuple[str, Record]] = []
        names: dict[str, list[str]] = {}
        first: dict[str, Record] = {}
        groups = machine_groups(results)
        for label, group in groups:
            for result in group:
                for r in (r for r in result.records if not r.frame):  # whole frames: their own table
                    raw.append((label, r))
                    key = (label, *_cell_key(r))
                    if _better(r, cells.get(key, (None, None))[1]):
                        cells[key] = (label, r)
                    names.setdefault(network(r.model), [])
                    if r.model not in names[network(r.model)]:
                        names[network(r.model)].append(r.model)
                    first.setdefault(network(r.model), r)
        ordered = sorted(first.items(), key=lambda kv: (paper_order(kv[0]), -kv[1].params))
        return cls(list(cells.values()), raw, names, [r for _, r in ordered], [label for label, _ in groups])

    def row_name(self, net: str) -> str:
        others = [n for n in self.names.get(net, []) if n != net]
        return f"{net} ({', '.join(others)})" if others else net

    def columns(self, keep) -> list[Column]:
        """Columns with at least one attempted (measured or failed) cell, in first-seen order."""
        keys = [Column(m, r.backend, r.precision, r.threads, r.batch, _mode(r)) for m, r in self.records
                if keep(r) and r.status in ("ok", "invalid", "failed")]
        return list(dict.fromkeys(keys))

    def find(self, net: str, column: Column) -> Record | None:
        for machine, r in self.records:
            if machine == column.machine and _cell_key(r) == (net, column.backend, column.precision,
                                                               column.threads, column.batch, column.mode):
                return r
        return None

    def merged_note(self) -> list[str]:
        merged = {net: names for net, names in self.names.items() if len(names) > 1}
        return [f"{', '.join(names)} are one network ({net}) with different weights: one row, the same timings; "
                "where both were measured the table shows the one with an accuracy figure, else the later one."
                for net, names in merged.items()]


def sizes_table(results: Iterable[BenchResult]) -> Table:
    sheet = _Sheet.of(results)
    keys = _size_keys(sheet)
    headers = ["model", "paper", "params", "paper MB", *[_size_label(k) for k in keys]]
    table = Table("Model sizes (MB)", headers, numeric=set(range(2, len(headers))),
                  description="The deployable file of each format (an IR counts its .bin), beside the paper's "
                              "TensorFlow checkpoint, which also holds Adam's two slots per weight.")
    for model in sheet.networks:
        net = network(model.model)
        row = _paper_row(net, model)
        cells = [Value(sheet.row_name(net)), Value(row.name if row else "-"), Value(f"{model.params:,}", model.params),
                 _number(row.size_mb if row else None, "{:.2f}")]
        cells += [_number(_size_mb(sheet, net, key), "{:.3f}") for key in keys]
        table.rows.append(cells)
    return table


def latency_table(results: Iterable[BenchResult], title: str = "Per-image latency at batch 1",
                  authors: AuthorsTiming | None = None) -> Table:
    """``authors``: the authors' graph timed in one run with bare ONNX Runtime (tools/time_authors_graph.py);
    without it the authors' column is the constant AUTHORS_TF_MS from another machine, labelled so."""
    results = list(results)
    sheet = _Sheet.of(results)
    columns = sheet.columns(lambda r: r.batch == 1 and _mode(r) == "latency")
    labels = _labels(columns, sheet)
    accuracy = any(r.accuracy is not None for _, r in sheet.records)  # --data: top-1 beside each speed
    timed = [h for lab in labels for h in ([f"{lab} ms", f"{lab} top-1"] if accuracy else [f"{lab} ms"])]
    headers = ["model", "paper", "params", *[f"paper {m} ms" for m in PAPER_MACHINES],
               "authors' TF ms (measured)" if authors else "authors' TF ms (fallback constant)", *timed]
    ends = _end_to_end_columns(results)
    headers += [f"{machine} end-to-end {size} {detector} ms" for machine, size, detector in ends]
    table = Table(title, headers, numeric=set(range(2, len(headers))),
                  description="Median milliseconds per image, one request at a time, batch 1 "
                              f"({_threads_text(columns)}). {CELL_LEGEND}.")
    authors_ms = authors.at(1).tf_ms if authors and authors.at(1) else AUTHORS_TF_MS
    for model in sheet.networks:
        row = _latency_row(sheet, network(model.model), model, columns, table.notes, accuracy, authors_ms)
        table.rows.append(row + [_end_to_end_cell(results, model.model, key) for key in ends])
    table.notes += sheet.merged_note() + _authors_note(sheet, authors)
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


def _latency_row(sheet: _Sheet, net: str, model: Record, columns: list[Column], notes: list[str],
                 accuracy: bool, authors_ms: float = AUTHORS_TF_MS) -> list[Value]:
    row = _paper_row(net, model)
    cells = [Value(sheet.row_name(net)), Value(row.name if row else "-"), Value(f"{model.params:,}", model.params)]
    cells += [_number(row.ms.get(m) if row else None, "{:.2f}") for m in PAPER_MACHINES]
    cells.append(_number(authors_ms if row and row.model == "p12-xxs" else None, "{:.3f}"))
    for column in columns:
        record = sheet.find(net, column)
        cells.append(_latency_cell(record, notes))
        if accuracy:
            top1 = record.accuracy if record else None
            cells.append(Value("-") if top1 is None else Value(f"{top1:.1%}", top1))
    return cells


def _latency_cell(record: Record | None, notes: list[str]) -> Value:
    if record is None:
        return Value("-")
    if not record.measured:
        return _status_cell(record, notes)
    ms = record.per_image_ms
    return Value(format_ms(ms) + _invalid_mark(record, notes), ms)


def speedup_table(results: Iterable[BenchResult]) -> Table | None:
    """Our batch-1 latency against the paper's CPU, as a ratio whose divisor is in its name."""
    sheet = _Sheet.of(results)
    columns = sheet.columns(lambda r: r.batch == 1 and _mode(r) == "latency" and r.measured)
    labels = _labels(columns, sheet)
    if not columns:
        return None
    headers = ["model", f"paper {SPEEDUP_BASE} ms", *[f"{lab} ({SPEEDUP_BASE} ms ÷ ours)" for lab in labels]]
    table = Table(f"Speed-up at batch 1 over the paper's {SPEEDUP_BASE}", headers, numeric=set(range(1, len(headers))),
                  description=f"The paper's {SPEEDUP_BASE} per-image milliseconds divided by our median at batch 1: "
                              "above 1 is faster than the paper's CPU. Different machines and runtimes, so a "
                              "ratio of two environments, not of two models.")
    for model in sheet.networks:
        net = network(model.model)
        row = _paper_row(net, model)
        base = row.ms.get(SPEEDUP_BASE) if row else None
        if not base:
            continue
        cells = [Value(sheet.row_name(net)), _number(base, "{:.2f}")]
        for column in columns:
            record = sheet.find(net, column)
            ms = record.per_image_ms if record and record.measured else None
            cells.append(Value("-") if not ms else Value(f"{base / ms:.1f}×", round(base / ms, 2)))
        table.rows.append(cells)
    return table if table.rows else None


def throughput_table(results: Iterable[BenchResult], title: str = "Throughput (images/s)") -> Table | None:
    sheet = _Sheet.of(results)
    columns = sheet.columns(lambda r: r.batch > 1 or _mode(r) != "latency")
    if not columns:
        return None
    labels = _labels(columns, sheet, batch=True)
    table = Table(title, ["model", "params", *[f"{lab} img/s" for lab in labels]],
                  numeric=set(range(1, len(labels) + 2)),
                  description=f"Images per second. {IPS_LATENCY}. {IPS_THROUGHPUT}. b256: batch 256; 2T: 2 "
                              "threads; the requests in flight of each throughput cell are in the distribution "
                              f"table, with the per-call timings. {CELL_LEGEND}.")
    for model in sheet.networks:
        net = network(model.model)
        cells = [Value(sheet.row_name(net)), Value(f"{model.params:,}", model.params)]
        for column in columns:
            record = sheet.find(net, column)
            if record is None or not record.measured:
                cells.append(_status_cell(record, table.notes) if record else Value("-"))
            else:
                ips = record.throughput_ips
                cells.append(Value(f"{ips:,.0f}" + _invalid_mark(record, table.notes), ips))
        table.rows.append(cells)
    return table


def distribution_table(results: Iterable[BenchResult]) -> Table | None:
    """Every measured cell, long format: the latency distribution per call (batch 256 included)."""
    sheet = _Sheet.of(results)
    several = len(sheet.machines) > 1
    headers = [*(["machine"] if several else []), "model", "backend", "precision", "threads", "batch", "in flight",
               "median ms", "p90 ms", "p99 ms", "mean ms", "calls"]
    first_number = headers.index("threads")
    table = Table("Latency distribution per call", headers, numeric=set(range(first_number, len(headers))),
                  description="Milliseconds per call (a call runs the whole batch), over every timed call of the "
                              "cell; 'in flight' is how many requests ran at once (1: latency mode). An empty "
                              "p90/p99: too few calls for that percentile (64 for p90, 100 for p99).")
    order = {net: i for i, net in enumerate(network(m.model) for m in sheet.networks)}
    measured = sorted(((m, r) for m, r in sheet.records if r.measured),
                      key=lambda mr: (sheet.machines.index(mr[0]), order.get(network(mr[1].model), 99)))
    for machine, r in measured:
        t = r.timing
        cells = [Value(machine)] if several else []
        cells += [Value(sheet.row_name(network(r.model))), Value(r.backend), Value(r.runtime_precision or r.precision),
                  Value(str(r.threads), r.threads), Value(str(r.batch), r.batch),
                  Value(r.extra.get("in_flight", "1"), float(r.extra.get("in_flight", 1))),
                  _number(t.median, "{:.4g}"), _number(t.p90, "{:.4g}"), _number(t.p99, "{:.4g}"),
                  _number(t.mean, "{:.4g}"), Value(f"{t.iterations:,}", t.iterations)]
        if r.status == "invalid":
            cells[-1] = Value(cells[-1].text + _invalid_mark(r, table.notes), t.iterations)
        table.rows.append(cells)
    return table if table.rows else None


def files_table(results: Iterable[BenchResult]) -> Table | None:
    """The files given with --models: what each backend made of them, with their spec's size and parity."""
    sheet = _Sheet.of(results)
    rows = _file_rows(sheet)
    if not rows:
        return None
    several = len(sheet.machines) > 1
    headers = [*(["machine"] if several else []), "file", "network", "backend", "precision", "status", "size MB",
               "parity max |dp|", "parity top-1"]
    table = Table("Given model files", headers, numeric={len(headers) - 3, len(headers) - 2, len(headers) - 1},
                  description="Files named with --models, timed as they are on each backend that reads them. "
                              "Parity compares the file, run on that backend, with the PyTorch model its spec "
                              "names (a bundled checkpoint, or a family member's seeded initialisation); 'n/a' "
                              "where no such source is known.")
    for machine, r, statuses in rows:
        p = r.parity
        missing = "n/a" if r.extra.get("parity", "").startswith("n/a") else "-"
        table.rows.append([*([Value(machine)] if several else []), Value(r.extra["file"]), Value(r.paper_name),
                           Value(r.backend), Value(r.runtime_precision or r.precision), Value(statuses),
                           _number(r.size_mb, "{:.3f}"),
                           Value(f"{p.max_abs_diff:.1e}" + ("" if p.passed else " FAILED"), p.max_abs_diff)
                           if p else Value(missing),
                           Value(f"{p.top1_agreement:.1%}", p.top1_agreement) if p else Value(missing)])
    if any(r.extra.get("parity", "").startswith("n/a") for _, r, _ in rows):
        table.notes.append("n/a: " + next(r.extra["parity"] for _, r, _ in rows
                                          if r.extra.get("parity", "").startswith("n/a"))[5:])
    return table


def _file_rows(sheet: _Sheet) -> list[tuple[str, Record, str]]:
    """(machine, record shown, statuses): one row per machine x file x backend x precision, however many runs,
    batches or thread counts timed it. The record shown is the one :func:`_better` picks; the statuses are its
    cells', counted when they differ ("2 ok, 1 failed")."""
    groups: dict[tuple, list[Record]] = {}
    for machine, r in sheet.records:
        if r.extra.get("file"):
            groups.setdefault((machine, r.model, r.backend, r.precision), []).append(r)
    rows = []
    for (machine, *_), records in groups.items():
        shown = None
        for r in records:
            shown = r if _better(r, shown) else shown
        rows.append((machine, shown, _status_counts(records, bare_if_one=True)))
    return rows


def _status_counts(records: list[Record], bare_if_one: bool = False) -> str:
    """"2 ok, 1 failed", statuses in first-seen order; with ``bare_if_one``, one status alone is "ok"."""
    counts = Counter(r.status for r in records)
    if bare_if_one and len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def backends_table(results: Iterable[BenchResult]) -> Table:
    """One row per machine x backend: what ran, on which device, in which precision, or why not."""
    sheet = _Sheet.of(results)
    table = Table("Backends", ["machine", "backend", "cells by status", "device", "runs as", "reason"],
                  description="A cell is one (model, precision, batch, threads) combination; 'cells by status' "
                              "counts them: ok = measured and valid, invalid = measured short of the minimums, "
                              "failed = error, crash or timeout, unavailable = backend not here, unsupported = "
                              "precision not offered by that backend. 'runs as': the precision the runtime "
                              "really computed in.")
    groups: dict[tuple[str, str], list[Record]] = {}
    for machine, r in sheet.raw:
        groups.setdefault((machine, r.backend), []).append(r)
    for (machine, backend), records in groups.items():
        status = _status_counts(records)
        devices = ", ".join(dict.fromkeys(_device(r) for r in records if r.device and r.measured))
        runs_as = ", ".join(dict.fromkeys(r.runtime_precision for r in records if r.runtime_precision))
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

    candidates = [r for r in records if network(r.model) == model and r.status == "ok" and r.batch == 1
                  and r.threads == 1 and r.precision == "fp32" and r.backend in BY_NAME
                  and not BY_NAME[r.backend].gpu and _mode(r) == "latency"]
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
                     "faster (authors' TF µs ÷ ours).")
    return notes


def _measured_authors_note(sheet: _Sheet, authors: AuthorsTiming) -> list[str]:
    notes = [f"MicroExpNet: {authors.summary()}."]
    tf_ms = authors.at(1).tf_ms
    for machine in sheet.machines:
        best = best_cpu(r for m, r in sheet.records if m == machine)
        if best is not None:
            notes.append(f"On {machine}, the best CPU backend at batch 1, {best.backend} ({best.runtime_precision}, "
                         f"1 thread), takes {best.per_image_ms * 1e3:.1f} µs: {tf_ms / best.per_image_ms:.1f}× the "
                         "authors' graph above (authors' TF µs ÷ ours; the bench and the timing file are separate "
                         "runs, the timing file's own ratio is the same-run one).")
    return notes


def _threads_text(columns: list[Column]) -> str:
    threads = sorted({c.threads for c in columns})
    if len(threads) == 1:
        return f"{threads[0]} thread{'s' if threads[0] > 1 else ''}"
    return "thread count in each column (1T, 2T...)"


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
        if c.mode != "latency":
            parts.append(c.mode)
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


def _size_mb(sheet: _Sheet, net: str, key: tuple[str, str]) -> float | None:
    return next((r.size_mb for _, r in sheet.records
                 if network(r.model) == net and _size_key(r) == key and r.size_mb), None)


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
