"""What a bench run will do: the request, the models it names, and the cells (one timing each).

A cell is (model, backend, precision, batch, threads). Cells of one (model, backend) run together
in one worker process; a cell that cannot run (backend unavailable, precision unsupported, artifact
not built) becomes a record with its status and reason without starting anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgefer.bench.catalog import BenchBackend
from edgefer.bench.harness import MIN_SAMPLES, TimingPlan
from edgefer.bench.paper import network, paper_order, paper_row
from edgefer.bench.records import Record
from edgefer.errors import InputError, ModelError
from edgefer.limits import check_batch, check_number, check_threads
from edgefer.spec import PRECISIONS, RANDOM_SOURCE

DEFAULT_MODELS = ("inception-v3", "p12-m", "p12-s", "p12-xs", "microexpnet")
#: Batch 1 is the paper's per-image latency; 256 measures throughput (not for heavy models by default).
DEFAULT_BATCHES = (1, 256)
#: latency: one request at a time (the paper's table); throughput: several in flight.
MODES = ("latency", "throughput")
#: Models above this many parameters (the teacher) get the short plan and batch 1 unless told otherwise.
HEAVY_PARAMS = 5_000_000


def heavy_plan(plan: TimingPlan) -> TimingPlan:
    """A heavy model's plan: at most 64 iterations (enough for p90, not p99) and 1 s required, 2 warm-up
    calls, a cap of 20 s or more; its records report p90 as their tail."""
    return TimingPlan(warmup_iters=min(plan.warmup_iters, 2), warmup_seconds=0.0,
                      min_iters=min(plan.min_iters, MIN_SAMPLES[90]), min_seconds=min(plan.min_seconds, 1.0),
                      max_seconds=max(plan.max_seconds, 20.0), percentiles=(90,))


@dataclass(frozen=True)
class ModelInfo:
    name: str  # canonical: p12-xxs, inception-v3, microexpnet-ck; a given file: its file name
    paper_name: str
    params: int
    file: str = ""  # an artifact given with --models FILE: timed as it is, nothing is built
    precision: str = ""  # that file's precision (its spec's)
    source: str = ""  # the model that reproduces the file's weights in PyTorch, for parity ("" unknown)
    network: str = ""  # a given file's architecture (p12-xxs), when the registry knows it

    @property
    def heavy(self) -> bool:
        return self.params > HEAVY_PARAMS

    def file_notes(self) -> dict[str, str]:
        """What a record of a given file says about it: the file, and why its parity is n/a."""
        if not self.file:
            return {}
        notes = {"file": self.file, **({"network": self.network} if self.network else {})}
        if not self.source:
            notes["parity"] = "n/a: no source checkpoint is known for this file (its spec names none edgefer has)"
        return notes


@dataclass(frozen=True)
class ArtifactInfo:
    """One file a backend runs, as the build step left it."""

    format: str
    precision: str
    path: str
    size_bytes: int = 0
    status: str = "written"  # written or failed
    reason: str = ""
    build_seconds: float = 0.0
    #: What the file depends on beyond format and precision (a TensorRT engine's profiles): a kept work
    #: folder reuses it only for a run that asks for the same.
    settings: str = ""


@dataclass(frozen=True)
class BenchCell:
    """One timing of the plan: a model on a backend at one precision, batch size and thread count."""

    model: ModelInfo
    backend: BenchBackend
    precision: str
    batch: int
    threads: int
    artifact: ArtifactInfo | None = None

    def record(self, status: str, reason: str = "") -> Record:
        """A record for this cell with everything known before it runs."""
        a = self.artifact
        return Record(
            model=self.model.name, backend=self.backend.name, precision=self.precision, batch=self.batch,
            threads=self.threads, status=status, reason=reason, paper_name=self.model.paper_name,
            params=self.model.params, device=self.backend.device, format=self.backend.format,
            artifact=Path(a.path).name if a and a.status == "written" else "",
            size_mb=round(a.size_bytes / 1e6, 4) if a and a.size_bytes else None,
            build_seconds=a.build_seconds if a else None, extra=self.model.file_notes())


@dataclass(frozen=True)
class BenchRequest:
    models: tuple[str, ...] = DEFAULT_MODELS
    backends: str = "all"
    precisions: tuple[str, ...] = ("fp32",)
    batches: tuple[int, ...] | None = None  # None: DEFAULT_BATCHES, batch 1 only for heavy models
    threads: tuple[int, ...] = (1,)
    plan: TimingPlan = field(default_factory=TimingPlan)
    timeout: float = 120.0  # seconds a worker may go without finishing a cell
    build_timeout: float = 900.0
    work: Path | None = None
    data: Path | None = None
    machine_name: str | None = None
    allow_fallback: bool = False  # an ONNX Runtime GPU backend without its provider runs on CPU, labelled so
    frames: tuple[tuple[int, int], ...] = ()  # whole-frame cells (width, height); none by default
    detectors: tuple[str, ...] = ("blazeface",)
    mode: str = "latency"  # "throughput": in_flight requests at once (benchmark_app's -hint throughput)
    in_flight: int = 0  # requests in flight in throughput mode; 0: one per CPU core

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"--mode {self.mode!r}: expected one of {', '.join(MODES)}")
        if self.in_flight < 0:
            raise InputError(f"--in-flight {self.in_flight}: expected a positive number")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise InputError(f"unknown precision {', '.join(bad) or '(none)'}: expected {', '.join(PRECISIONS)}")
        if not self.models and not self.frames:
            raise InputError("no models given")
        from edgefer.detect import DETECTORS

        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown or not self.detectors:
            raise InputError(f"--detectors {', '.join(unknown) or '(none)'}: expected some of {', '.join(DETECTORS)}")
        if not self.threads:
            raise InputError("no thread counts given")
        for batch in self.batches or ():
            check_batch(batch, "--batch")
        for threads in self.threads:
            check_threads(threads, "--threads")
        check_number(self.timeout, "--timeout", 1.0, 86_400.0)
        if self.data is not None and not Path(self.data).is_dir():
            raise InputError(f"{self.data}: --data must be a folder with one sub-folder per label")

    def batches_for(self, model: ModelInfo) -> tuple[int, ...]:
        if self.batches is not None:
            return self.batches
        return (1,) if model.heavy else DEFAULT_BATCHES

    def plan_for(self, model: ModelInfo) -> TimingPlan:
        return heavy_plan(self.plan) if model.heavy else self.plan

    @property
    def requests_in_flight(self) -> int:
        """1 in latency mode; in throughput mode --in-flight, or one request per CPU core."""
        import os

        if self.mode == "latency":
            return 1
        return self.in_flight or max(2, os.cpu_count() or 1)

    @property
    def max_batch(self) -> int:
        return max((*(self.batches or ()), *DEFAULT_BATCHES))

    def to_dict(self) -> dict[str, object]:
        return {"models": list(self.models), "backends": self.backends, "precisions": list(self.precisions),
                "batches": list(self.batches) if self.batches else None, "threads": list(self.threads),
                "plan": asdict(self.plan), "heavy_plan": asdict(heavy_plan(self.plan)),
                "timeout": self.timeout, "data": str(self.data) if self.data else None,
                "frames": [f"{w}x{h}" for w, h in self.frames], "detectors": list(self.detectors),
                "mode": self.mode, "in_flight": self.requests_in_flight}


def resolve_models(names: tuple[str, ...]) -> list[ModelInfo]:
    """Names, aliases or artifact files -> models in the paper's row order (no torch, no runtime)."""
    from edgefer.artifact import artifact_format
    from edgefer.train.models.registry import canonical_name, list_models

    entries = {e.name: e for e in list_models()}
    models: dict[str, ModelInfo] = {}
    for name in names:
        if artifact_format(name):
            info = file_model(Path(name), {k: e.params for k, e in entries.items()})
            models[info.file] = info
            continue
        key = canonical_name(name)
        row = paper_row(key)
        models[key] = ModelInfo(key, row.name if row else key, entries[key].params)
    return sorted(models.values(), key=lambda m: (paper_order(m.name), -m.params))


def file_model(path: Path, params: dict[str, int]) -> ModelInfo:
    """A given artifact: named by its file, with its spec's network, precision and known source (if any)."""
    from edgefer.artifact import read_spec
    from edgefer.train.models.registry import canonical_name

    spec = read_spec(path)
    arch = spec.model.partition(":")[0]
    try:
        arch = canonical_name(arch)
    except ModelError:  # a network the registry does not know: no parameter count, no source
        arch = ""
    row = paper_row(arch) if arch else None
    return ModelInfo(path.name, row.name if row else (arch or spec.model or path.name),
                     params.get(network(arch), 0), str(path), spec.precision, known_source(spec, arch),
                     network(arch) if arch else "")


def known_source(spec, arch: str) -> str:
    """The model whose PyTorch weights are the file's: a bundled checkpoint, or a family member's seeded
    random initialisation (what `edgefer convert p12-s` exports); "" when unknown (parity is then n/a)."""
    from edgefer.fileio import file_sha256
    from edgefer.zoo import PRETRAINED

    if spec.model in PRETRAINED:
        bundled = PRETRAINED[spec.model]
        if spec.source.startswith("authors' TensorFlow checkpoint") or \
                spec.source_sha256 == file_sha256(bundled.safetensors):
            return spec.model
        return ""
    if arch and spec.source == RANDOM_SOURCE:
        return arch
    return ""



def cells_for(request: BenchRequest, model: ModelInfo, backend: BenchBackend) -> list[BenchCell]:
    """Every cell of one (model, backend), ordered so each (precision, threads) loads once; a given file runs
    in its own precision, on the backends that read its format."""
    if model.file and not reads_file(backend, model.file):
        return []
    return [BenchCell(model, backend, precision, batch, threads)
            for precision in ((model.precision,) if model.file else request.precisions)
            for threads in request.threads
            for batch in request.batches_for(model)]


def reads_file(backend: BenchBackend, path: str) -> bool:
    """Whether a bench backend runs this artifact file as it is (OpenVINO reads ONNX too)."""
    from edgefer.artifact import artifact_format
    from edgefer.runtime.loader import READS

    suffixes, _ = READS.get(backend.runtime, ((), ""))
    return Path(path).suffix.lower() in suffixes and (
        artifact_format(path) == backend.format or backend.runtime == "openvino")


def with_artifact(cell: BenchCell, artifact: ArtifactInfo | None) -> BenchCell:
    return replace(cell, artifact=artifact)
