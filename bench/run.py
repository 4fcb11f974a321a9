"""`edgefer bench`: detect the machine once, build each model's artifacts, time every cell in workers.

Models run one after another, each backend of a model in its own worker process, never two at
once (a benchmark shares the machine with nothing it can avoid). Every cell of the plan ends as
one record, measured or not: nothing is silently left out.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgefer.bench.catalog import Availability, BenchBackend, availability, parse_backends, unsupported_reason
from edgefer.bench.frames import bench_frames, frame_cells
from edgefer.bench.jobs import BuildJob, TimeJob
from edgefer.bench.machine import describe_machine, load_average
from edgefer.bench.plan import (
    ArtifactInfo,
    BenchCell,
    BenchRequest,
    ModelInfo,
    cells_for,
    resolve_models,
    with_artifact,
)
from edgefer.bench.records import BenchResult, Record
from edgefer.bench.runners import mode_refusal
from edgefer.bench.supervisor import run_worker
from edgefer.spec import FORMATS, PRECISIONS


class Progress(Protocol):
    """What the run tells its caller: the number of steps, what it is doing now, each step done."""

    def start(self, total: int) -> None: ...

    def doing(self, what: str) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def doing(self, what: str) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


@dataclass(frozen=True)
class _Context:
    request: BenchRequest
    backends: list[BenchBackend]
    availability: dict[str, Availability]
    work: Path
    data: Path | None
    progress: Progress


def run_bench(request: BenchRequest, progress: Progress | None = None) -> BenchResult:
    from edgefer.sysinfo import detect

    progress = progress or _Silent()
    started = time.perf_counter()
    system = detect(include_torch=True)
    machine = describe_machine(system, request.machine_name)
    backends = parse_backends(request.backends, system)
    models = resolve_models(request.models)
    found = {b.name: availability(b, system, request.allow_fallback) for b in backends}
    with _work_folder(request.work) as work:
        data = _prepare_data(request.data, work)
        context = _Context(request, backends, found, work, data, progress)
        frames = frame_cells(request.frames, request.detectors, backends, request.threads)
        progress.start(len(models) + sum(len(cells_for(request, m, b)) for m in models for b in backends)
                       + len(frames))
        records = [record for model in models for record in _bench_model(model, context)]
        records += bench_frames(frames, found, request.plan, lambda what: _step(progress, what))
    machine.load_average_end = load_average()
    return BenchResult(machine, records, request.to_dict(), time.perf_counter() - started)


def _step(progress: Progress, what: str) -> None:
    progress.doing(what)
    progress.advance()


@contextlib.contextmanager
def _work_folder(work: Path | None) -> Iterator[Path]:
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        yield work
        return
    folder = Path(tempfile.mkdtemp(prefix="edgefer-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _prepare_data(data: Path | None, work: Path) -> Path | None:
    if data is None:
        return None
    from edgefer.bench.accuracy import load_labelled_folder

    return load_labelled_folder(data).save(work / "data.npz")


def _bench_model(model: ModelInfo, context: _Context) -> list[Record]:
    runnable = [b for b in context.backends if context.availability[b.name].available]
    if model.file:
        artifacts, reference, build_failure = _given(model, runnable, context)
    else:
        artifacts, reference, build_failure = _build(model, runnable, context)
    context.progress.advance()
    records: list[Record] = []
    for backend in context.backends:
        cells = cells_for(context.request, model, backend)
        early = [_not_runnable(c, context.availability[backend.name], artifacts, build_failure, context.request.mode)
                 for c in cells]
        context.progress.advance(sum(r is not None for r in early))
        ready = [with_artifact(c, artifacts.get(_artifact_key(c))) for c, r in zip(cells, early, strict=True)
                 if r is None]
        timed = iter(_time(model, backend, ready, reference, context) if ready else [])
        records += [r if r is not None else next(timed) for r in early]
    return records


def _artifact_key(cell: BenchCell) -> tuple[str, str]:
    """The torch backends run the fp32 weights file in every precision."""
    fmt = cell.backend.format
    return fmt, "fp32" if fmt == "safetensors" else cell.precision


def _not_runnable(cell: BenchCell, found: Availability, artifacts: dict, build_failure: str,
                  mode: str = "latency") -> Record | None:
    """The record of a cell that cannot run, or None when it can."""
    if not found.available:
        return cell.record("unavailable", found.reason)
    reason = unsupported_reason(cell.backend, cell.precision) or mode_refusal(cell.backend, mode)
    if reason:
        return cell.record("unsupported", reason)
    artifact = artifacts.get(_artifact_key(cell))
    if artifact is None:
        return cell.record("failed", build_failure or f"no {cell.backend.format} {cell.precision} artifact built")
    if artifact.status != "written":
        return with_artifact(cell, artifact).record("failed", artifact.reason)
    return None


def _given(model: ModelInfo, runnable: list[BenchBackend], context: _Context):
    """A file given with --models: it is the artifact of every backend that reads it; the reference logits come
    from its known source (built like any model's), or there are none and parity is n/a."""
    from edgefer.artifact import artifact_files

    size = sum(p.stat().st_size for p in artifact_files(model.file))
    artifacts = {(b.format, model.precision): ArtifactInfo(b.format, model.precision, model.file, size)
                 for b in runnable}
    if not model.source or not runnable:
        return artifacts, None, ""
    source = ModelInfo(model.source, model.paper_name, model.params)
    _, reference, failure = _build(source, [], context, reference_only=True)
    return artifacts, reference, failure


def engine_contexts(request: BenchRequest) -> int:
    """Copies of each TensorRT profile to build: one per request in flight (TensorRT lets each concurrent
    context of a dynamic-shape engine hold its own profile), at most the backend's worker bound."""
    from edgefer.runtime.tensorrt_backend import MAX_WORKERS

    return min(request.requests_in_flight, MAX_WORKERS)


def _build(model: ModelInfo, runnable: list[BenchBackend], context: _Context, reference_only: bool = False):
    """Artifacts by (format, precision), the reference crops file, and why the build failed ("" if not)."""
    if not runnable and not reference_only:
        return {}, None, ""
    request = context.request
    formats = [f for f in FORMATS if any(b.format == f for b in runnable)]
    precisions = [p for p in request.precisions if p in PRECISIONS
                  and any(not unsupported_reason(b, p) for b in runnable if b.format in FORMATS)]
    torch_weights = any(b.format == "safetensors" for b in runnable)
    folder = context.work / model.name
    job = BuildJob(model.name, formats, precisions if formats else [], torch_weights, str(folder),
                   request.max_batch, str(context.work / "jobs" / f"{model.name}.build.jsonl"),
                   opt_batches=sorted(set(request.batches_for(model))), contexts=engine_contexts(request))
    (context.work / "jobs").mkdir(exist_ok=True)
    context.progress.doing(f"{model.name}: building {', '.join(formats) or 'reference'}")
    outcome = run_worker(job, context.work / "jobs" / f"{model.name}.build.json", request.build_timeout)
    artifacts, reference = {}, None
    for item in outcome.items:
        if "artifact" in item:
            info = ArtifactInfo(**item["artifact"])
            artifacts[info.format, info.precision] = info
        reference = item.get("reference", reference)
    failure = f"artifact build: {outcome.failure}" if outcome.failure else ""
    return artifacts, reference, failure


def _time(model: ModelInfo, backend: BenchBackend, cells: list[BenchCell], reference: str | None,
          context: _Context) -> list[Record]:
    request = context.request
    plan = request.plan_for(model)
    stem = context.work / "jobs" / f"{model.name}.{backend.name}"
    job = TimeJob(model, backend.name, [(c.precision, c.batch, c.threads) for c in cells],
                  {c.precision: c.artifact for c in cells if c.artifact}, plan, str(stem) + ".jsonl",
                  reference, str(context.data) if context.data else None, request.allow_fallback,
                  request.mode, request.requests_in_flight)

    context.progress.doing(f"{model.name} on {backend.name}")
    outcome = run_worker(job, Path(str(stem) + ".json"), request.timeout + plan.max_seconds,
                         lambda item: context.progress.advance())
    measured = {(r.precision, r.batch, r.threads): r
                for r in (Record.from_dict(i["record"]) for i in outcome.items if "record" in i)}
    records = []
    for cell in cells:
        record = measured.get((cell.precision, cell.batch, cell.threads))
        if record is None:
            record = cell.record("failed", outcome.failure or "worker ended without a result")
            context.progress.advance()
        records.append(record)
    return records
