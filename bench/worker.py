"""A bench worker: ``python -m edgefer.bench.worker JOB.json`` runs one job in its own process.

Isolation is the point: a runtime that crashes or hangs takes down this process only, and the
supervisor turns that into failed records. Results go to the job's ``out`` file as JSON lines,
one per finished unit, flushed at once.

``EDGEFER_BENCH_FAULT=<backend>:crash|segfault|hang`` makes the worker of that backend abort
(SIGABRT), die of a real SIGSEGV, or hang before it loads anything: the test suite's way to prove
that a crash or hang of a runtime is contained. Only the worker reads it; it is not an option.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import BY_NAME
from edgefer.bench.jobs import TimeJob, read_job
from edgefer.bench.plan import BenchCell
from edgefer.bench.records import Parity, Record
from edgefer.errors import one_line
from edgefer.fileio import file_sha256

FAULT_ENV = "EDGEFER_BENCH_FAULT"
SPLIT_REPEATS = 50
INPUT_SEED = 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = read_job(argv[0])
    with open(job.out, "a", encoding="utf-8") as out:
        def emit(item: dict) -> None:
            out.write(json.dumps(item) + "\n")
            out.flush()

        if isinstance(job, TimeJob):
            _inject_fault(job.backend)
            time_backend(job, emit)
        else:
            from edgefer.bench.artifacts import build

            build(job, emit)
    return 0


def time_backend(job: TimeJob, emit: Callable[[dict], None]) -> None:
    """Every cell of the job: one runner per (precision, threads), every batch size on it."""
    backend = BY_NAME[job.backend]
    for (precision, threads), group in itertools.groupby(job.cells, key=lambda c: (c[0], c[2])):
        cells = [BenchCell(job.model, backend, precision, batch, threads, job.artifacts.get(precision))
                 for _, batch, _ in group]
        for record in _time_group(job, cells):
            emit({"record": record.to_dict()})


def _time_group(job: TimeJob, cells: list[BenchCell]):
    from edgefer.bench.runners import prepare
    from edgefer.errors import BackendUnavailable, FallbackRefused

    first = cells[0]
    try:
        runner = prepare(first.backend, job.model.file or job.model.name, first.precision, first.threads,
                         first.artifact, allow_fallback=job.allow_fallback, mode=job.mode)
    except Exception as err:  # noqa: BLE001 - a backend that cannot load gives records, not a crash
        status = "unavailable" if isinstance(err, BackendUnavailable) else "failed"
        for cell in cells:
            record = cell.record(status, f"load failed: {_why(err)}")
            record.fallback_refused = isinstance(err, FallbackRefused)
            yield record
        return
    try:
        try:
            parity, accuracy = _quality(runner, job, first.precision)
        except Exception as err:  # noqa: BLE001 - still time it; the record says why parity is missing
            parity = accuracy = None
            runner.extra["quality_error"] = _why(err)
        for cell in cells:
            yield _time_cell(runner, cell, job, parity, accuracy)
    finally:
        runner.close()


def _time_cell(runner, cell: BenchCell, job: TimeJob, parity: Parity | None, accuracy) -> Record:
    from edgefer.bench.harness import measure

    record = cell.record("failed")
    record.runtime_precision, record.device = runner.precision, runner.device
    record.load_seconds, record.parity = runner.load_seconds, parity
    record.extra = {**record.extra, **runner.extra}
    record.accuracy, record.accuracy_samples = accuracy if accuracy else (None, 0)
    record.artifact_sha256 = _sha256(cell.artifact.path) if cell.artifact else ""
    try:
        pixels = inputs(cell.batch, runner.input_shape)
        call = runner.bind(pixels)
        start = time.perf_counter_ns()
        call()
        record.first_call_ms = (time.perf_counter_ns() - start) / 1e6
        if job.mode == "throughput":
            load = runner.under_load(pixels, job.in_flight, job.plan)
            record.timing = load.timing
            record.extra.update(mode="throughput", in_flight=str(job.in_flight),
                                images_per_second=f"{load.images_per_second:.6g}",
                                wall_seconds=f"{load.wall_seconds:.4g}")
        else:
            record.timing = measure(call, job.plan)
            record.gpu_ms = runner.gpu_split(pixels, SPLIT_REPEATS)
    except Exception as err:  # noqa: BLE001 - e.g. a batch outside a TensorRT profile
        record.reason = f"run failed: {_why(err)}"
        return record
    finally:
        record.compile_seconds = runner.compile_seconds
        record.peak_rss_mb = peak_rss_mb()
    record.status = "ok" if record.timing.valid else "invalid"
    record.reason = record.timing.invalid_reason
    return record


def _quality(runner, job: TimeJob, precision: str) -> tuple[Parity | None, tuple[float, int] | None]:
    """Parity against PyTorch on the reference crops, and top-1 on the labelled data, on this runner."""
    from edgefer.bench.accuracy import LabelledCrops, top1_accuracy
    from edgefer.convert.parity import TOLERANCES, compare

    parity = accuracy = None
    if job.reference:
        with np.load(job.reference) as ref:
            pixels, logits = ref["pixels"], ref["logits"]
        report = compare(logits, runner.infer(pixels), precision if precision in TOLERANCES else "fp16",
                         BY_NAME[job.backend].format)
        parity = Parity(report.max_abs_diff, report.top1_agreement, report.samples, report.passed)
    if job.data:
        data = LabelledCrops.load(job.data)
        accuracy = (top1_accuracy(runner.infer, data, runner.input_shape), len(data.labels))
    return parity, accuracy


def inputs(batch: int, input_shape: tuple[int, ...]) -> np.ndarray:
    """A fixed-seed batch of whole-number pixels 0..255, float32, contiguous."""
    rng = np.random.default_rng(INPUT_SEED)
    return rng.integers(0, 256, size=(batch, *input_shape)).astype(np.float32)


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS does not say).

    Linux: VmHWM of /proc/self/status, because ru_maxrss survives exec and would report the
    parent's peak (the supervisor has imported torch) whenever that is the larger.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _sha256(path: str) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""


def _inject_fault(backend: str) -> None:
    target, _, fault = os.environ.get(FAULT_ENV, "").partition(":")
    if target != backend:
        return
    if fault == "crash":
        os.abort()
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if fault == "hang":
        time.sleep(10**6)


def _why(err: BaseException) -> str:
    return one_line(err, 400, typed=True)


if __name__ == "__main__":
    sys.exit(main())
