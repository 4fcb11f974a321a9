"""`edgefer report`: merge result files from several machines into Markdown, CSV and a plot."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgefer.bench.authors import AuthorsTiming
from edgefer.bench.records import BenchResult, read_result
from edgefer.bench.table import (
    Table,
    Value,
    backends_table,
    distribution_table,
    files_table,
    frames_table,
    latency_table,
    machine_groups,
    sizes_table,
    speedup_table,
    throughput_table,
)
from edgefer.errors import InputError
from edgefer.fileio import atomic_write_text, check_output_folder, csv_cell
from edgefer.textsafe import markdown_cell

LIBRARIES = ("onnxruntime", "openvino", "torch", "tensorrt")
RECORD_COLUMNS = ("machine", "model", "backend", "device", "precision", "runtime_precision", "batch", "threads",
                  "status", "params", "format", "size_mb", "per_image_ms", "throughput_ips", "median_ms", "p90_ms",
                  "p99_ms", "mean_ms", "std_ms", "iterations", "seconds", "load_seconds", "compile_seconds",
                  "first_call_ms", "peak_rss_mb", "h2d_ms", "compute_ms", "d2h_ms", "parity_max_abs_diff",
                  "parity_top1", "accuracy", "accuracy_samples", "frame", "detector", "fps", "detect_ms", "crop_ms",
                  "classify_ms", "detection_share", "stream_fps", "stream_ids", "reason")


LATENCY_TITLE = "Per-image latency at batch 1"
THROUGHPUT_TITLE = "Throughput (images/s)"
EMULATED = " — EMULATED machines (qemu): not a real device's speed"


@dataclass
class Report:
    """One table per question: machines, sizes, latency at batch 1, speed-up, throughput, distribution, backends.
    Emulated machines (qemu-user) get latency and throughput tables of their own, apart from real machines'
    figures (their timings say nothing about a device's speed)."""

    results: list[BenchResult]
    machines: Table
    sizes: Table
    latency: Table
    speedup: Table | None
    throughput: Table | None
    distribution: Table | None
    backends: Table
    files: Table | None = None
    best: Table | None = None  # each backend at its best precision beside fp32 (bench/recommend.py)
    frames: Table | None = None
    emulated_latency: Table | None = None
    emulated_throughput: Table | None = None

    @classmethod
    def of(cls, results: Sequence[BenchResult], authors: AuthorsTiming | None = None) -> Report:
        """``authors``: the authors' graph timed beside bare ONNX Runtime (tools/time_authors_graph.py)."""
        from edgefer.bench.recommend import best_precision_table

        if not results:
            raise InputError("no result files given")
        real = [r for r in results if not r.machine.emulated]
        emulated = [r for r in results if r.machine.emulated]
        main, suffix = (real, "") if real else (emulated, EMULATED)
        apart = bool(real and emulated)
        return cls(list(results), machines_table(results), sizes_table(results),
                   latency_table(main, LATENCY_TITLE + suffix, authors=authors), speedup_table(main),
                   throughput_table(main, THROUGHPUT_TITLE + suffix), distribution_table(main),
                   backends_table(results), files_table(results), best_precision_table(main), frames_table(main),
                   latency_table(emulated, LATENCY_TITLE + EMULATED) if apart else None,
                   throughput_table(emulated, THROUGHPUT_TITLE + EMULATED) if apart else None)

    @property
    def main_results(self) -> list[BenchResult]:
        """The results the main tables show: the real machines', or the emulated ones' when there are no others."""
        real = [r for r in self.results if not r.machine.emulated]
        return real or list(self.results)

    @property
    def tables(self) -> list[Table]:
        latency = self.latency if self.latency.rows else None  # a frames-only run has no model rows
        sizes = self.sizes if self.sizes.rows else None
        backends = self.backends if self.backends.rows else None
        return [t for t in (self.machines, self.files, sizes, latency, self.speedup, self.throughput,
                            self.distribution, self.best, self.frames, self.emulated_latency, self.emulated_throughput,
                            backends) if t is not None]

    def markdown(self, plots: Sequence[str] = ()) -> str:
        parts = ["# edgefer bench", ""]
        parts += [render_markdown(table) for table in self.tables]
        parts += [f"![{Path(plot).stem}]({plot})\n" for plot in plots]
        return "\n".join(parts)


def read_results(paths: Sequence[str | os.PathLike]) -> list[BenchResult]:
    return [read_result(p) for p in paths]


def machines_table(results: Sequence[BenchResult]) -> Table:
    """One row per machine fingerprint (name, CPU, GPUs); several runs of one machine are one row."""
    headers = ["machine", "cpu", "cores", "memory GB", "gpu", "driver", *LIBRARIES, "runs", "load start/end",
               "wall s"]
    table = Table("Machines", headers, numeric={2, 3, len(headers) - 3, len(headers) - 1},
                  description="A machine is its host name (or --machine), CPU and GPUs: runs of the same one are "
                              "merged into one set of columns. Libraries are the last run's; load is the 1-minute "
                              "load average at the start and end of each run (other work inflates timings).")
    for label, group in machine_groups(results):
        m = group[-1].machine
        versions = [Value(m.libraries.get(lib) or "-") for lib in LIBRARIES]
        loads = "; ".join(_loads(r.machine.load_average, r.machine.load_average_end) for r in group)
        wall = sum(r.wall_seconds for r in group)
        if m.emulated:
            table.notes.append(f"{m.name} is EMULATED ({m.emulation or 'qemu'}): its timings say nothing about "
                               "a real device's speed and are kept apart from the real machines'.")
            label = f"{label} (emulated)"
        table.rows.append([Value(label), Value(m.cpu), Value(str(m.cores), m.cores),
                           Value(f"{m.memory_gb:g}" if m.memory_gb else "-", m.memory_gb),
                           Value(", ".join(m.gpus) or "-"), Value(m.gpu_driver or "-"), *versions,
                           Value(str(len(group)), len(group)), Value(loads), Value(f"{wall:.0f}", wall)])
    return table


def _loads(start: list[float], end: list[float]) -> str:
    """The 1-minute load average when the run started and ended."""
    return " / ".join(f"{v[0]:g}" if v else "-" for v in (start, end))


def render_markdown(table: Table) -> str:
    """The table in Markdown; every cell, header and note escaped (``textsafe.markdown_cell``): machine and model
    names come from result files, which anyone can write."""
    escape = markdown_cell
    lines = [f"## {escape(table.title)}", ""] + ([escape(table.description), ""] if table.description else [])
    lines += ["| " + " | ".join(escape(h) for h in table.headers) + " |",
             "| " + " | ".join("---:" if i in table.numeric else "---" for i in range(len(table.headers))) + " |"]
    lines += ["| " + " | ".join(escape(v.text) for v in row) + " |" for row in table.rows]
    if table.notes:
        lines += [""] + [f"{i}. {escape(note)}" for i, note in enumerate(table.notes, 1)]
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in table.headers])  # headers hold machine names
    for row in table.rows:
        writer.writerow([csv_cell(v.number if v.number is not None else v.text) for v in row])
    return buffer.getvalue()


def records_csv(results: Sequence[BenchResult]) -> str:
    """Every record of every machine, one row each (long format, for a spreadsheet or pandas)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RECORD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        for r in result.records:
            t, g, p = r.timing, r.gpu_ms, r.parity
            writer.writerow({k: csv_cell(v) for k, v in {
                "machine": result.machine.name, "model": r.model, "backend": r.backend, "device": r.device,
                "precision": r.precision, "runtime_precision": r.runtime_precision, "batch": r.batch,
                "threads": r.threads, "status": r.status, "params": r.params, "format": r.format,
                "size_mb": r.size_mb, "per_image_ms": r.per_image_ms, "throughput_ips": r.throughput_ips,
                "median_ms": t and t.median, "p90_ms": t and t.p90, "p99_ms": t and t.p99, "mean_ms": t and t.mean,
                "std_ms": t and t.std, "iterations": t and t.iterations, "seconds": t and t.seconds,
                "load_seconds": r.load_seconds, "compile_seconds": r.compile_seconds,
                "first_call_ms": r.first_call_ms, "peak_rss_mb": r.peak_rss_mb, "h2d_ms": g and g.h2d_ms,
                "compute_ms": g and g.compute_ms, "d2h_ms": g and g.d2h_ms,
                "parity_max_abs_diff": p and p.max_abs_diff, "parity_top1": p and p.top1_agreement,
                "accuracy": r.accuracy, "accuracy_samples": r.accuracy_samples, "frame": r.frame,
                "detector": r.detector, "fps": r.fps, **{f"{k}_ms": (r.stages_ms or {}).get(k)
                                                         for k in ("detect", "crop", "classify")},
                "detection_share": r.detection_share, "stream_fps": r.stream_fps, "stream_ids": r.stream_ids,
                "reason": r.reason}.items()})
    return buffer.getvalue()


def write_report(report: Report, out: Path, plot: bool = True) -> list[Path]:
    """report.md, latency.csv, throughput.csv (when measured), records.csv and latency.png in ``out``."""
    check_output_folder(out)
    written = []
    if plot:
        from edgefer.bench.plot import plot_latency, plot_throughput

        written.append(plot_latency(report.main_results, out / "latency.png"))
        if report.throughput is not None:
            written.append(plot_throughput(report.main_results, out / "throughput.png"))
    plots = [p.name for p in written]
    written.append(atomic_write_text(out / "report.md", report.markdown(plots)))
    written.append(atomic_write_text(out / "sizes.csv", render_csv(report.sizes)))
    written.append(atomic_write_text(out / "latency.csv", render_csv(report.latency)))
    if report.throughput is not None:
        written.append(atomic_write_text(out / "throughput.csv", render_csv(report.throughput)))
    if report.best is not None:
        written.append(atomic_write_text(out / "best_precision.csv", render_csv(report.best)))
    if report.frames is not None:
        written.append(atomic_write_text(out / "frames.csv", render_csv(report.frames)))
    if report.emulated_latency is not None:
        written.append(atomic_write_text(out / "latency-emulated.csv", render_csv(report.emulated_latency)))
    written.append(atomic_write_text(out / "records.csv", records_csv(report.results)))
    return written
