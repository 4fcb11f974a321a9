"""What a bench run writes: one Record per (model, backend, precision, batch, threads) cell, in schema 1 JSON.

``{"schema": 1, "machine": {...}, "options": {...}, "records": [...]}``; readers ignore keys they do
not know, so later schema-1 writers may add fields.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgefer.bench.harness import Timing
from edgefer.bench.machine import Machine
from edgefer.bench.result_check import LatencyFields, RunFields, check_fields, check_value, load_result_json
from edgefer.errors import InputError, one_line
from edgefer.fileio import atomic_write_text

SCHEMA = 1

#: ok: measured and valid; invalid: measured, minimum count/duration not reached; failed: error,
#: crash or timeout; unavailable: backend or device not here; unsupported: precision not offered.
STATUSES = ("ok", "invalid", "failed", "unavailable", "unsupported")


@dataclass(frozen=True)
class Parity:
    """The artifact as run by this backend, against the PyTorch model on real face crops."""

    max_abs_diff: float
    top1_agreement: float
    samples: int
    passed: bool


@dataclass(frozen=True)
class GpuSplit:
    """Medians of GPU-event times per call, milliseconds: host-to-device copy, compute, device-to-host."""

    h2d_ms: float
    compute_ms: float
    d2h_ms: float


@dataclass
class Record:
    model: str
    backend: str
    precision: str
    batch: int
    threads: int
    status: str
    paper_name: str = ""
    params: int = 0
    device: str = ""
    runtime_precision: str = ""
    format: str = ""
    artifact: str = ""
    artifact_sha256: str = ""  # of the file the backend ran (an IR's .xml; its .bin is in size_mb)
    size_mb: float | None = None
    reason: str = ""
    timing: Timing | None = None
    load_seconds: float | None = None
    compile_seconds: float | None = None
    first_call_ms: float | None = None
    build_seconds: float | None = None
    peak_rss_mb: float | None = None
    gpu_ms: GpuSplit | None = None
    parity: Parity | None = None
    accuracy: float | None = None
    accuracy_samples: int = 0
    fallback_refused: bool = False  # unavailable because it would have run on the CPU (FallbackRefused)
    extra: dict[str, str] = field(default_factory=dict)
    # Whole-frame cells (bench --frames): one call = one frame through detection, crop and classification.
    frame: str = ""  # "640x480"; "" for a model cell
    detector: str = ""
    stages_ms: dict[str, float] | None = None  # median ms of each stage alone: detect, crop, classify
    detection_share: float | None = None  # detect / (detect + crop + classify)
    stream_fps: float | None = None  # Recognizer.stream, detection every 5th frame, 30 fps clip
    stream_ids: int | None = None  # face ids that stream gave (1: tracking held)

    @property
    def measured(self) -> bool:
        return self.timing is not None and self.status in ("ok", "invalid")

    @property
    def per_image_ms(self) -> float | None:
        return self.timing.median / self.batch if self.timing else None

    @property
    def fps(self) -> float | None:
        """Frames per second of a whole-frame cell (1000 / median ms)."""
        return 1e3 / self.timing.median if self.frame and self.timing and self.timing.median > 0 else None

    @property
    def throughput_ips(self) -> float | None:
        """Images per second: measured over the wall time in throughput mode (several requests in flight),
        else batch x 1000 / mean ms per call."""
        if "images_per_second" in self.extra:
            return float(self.extra["images_per_second"])
        return self.batch * 1e3 / self.timing.mean if self.timing and self.timing.mean > 0 else None

    def to_dict(self) -> dict[str, object]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timing"}
        for key in ("gpu_ms", "parity"):
            data[key] = asdict(data[key]) if data[key] is not None else None
        t = self.timing
        data["latency_ms"] = None if t is None else {
            "median": t.median, "p90": t.p90, "p99": t.p99, "mean": t.mean, "std": t.std, "min": t.min,
            "max": t.max, "cv": t.cv}
        data["per_image_ms"] = self.per_image_ms
        data["throughput_ips"] = self.throughput_ips
        if self.frame:
            data["fps"] = self.fps
        data["run"] = None if t is None else {
            "iterations": t.iterations, "seconds": t.seconds, "warmup_iterations": t.warmup_iterations,
            "warmup_seconds": t.warmup_seconds, "valid": t.valid, "invalid_reason": t.invalid_reason}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        known = {f.name for f in fields(cls)} - {"timing", "gpu_ms", "parity"}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.gpu_ms = GpuSplit(**data["gpu_ms"]) if data.get("gpu_ms") else None
        record.parity = Parity(**data["parity"]) if data.get("parity") else None
        latency, run = data.get("latency_ms"), data.get("run")
        if latency and run:
            record.timing = Timing(
                median=latency["median"], p90=latency.get("p90"), p99=latency.get("p99"), mean=latency["mean"],
                std=latency.get("std", 0.0), min=latency.get("min", latency["median"]),
                max=latency.get("max", latency["median"]), iterations=run["iterations"], seconds=run["seconds"],
                warmup_iterations=run.get("warmup_iterations", 0), warmup_seconds=run.get("warmup_seconds", 0.0),
                valid=run["valid"], invalid_reason=run.get("invalid_reason", ""))
        return record


@dataclass
class BenchResult:
    """One bench run on one machine."""

    machine: Machine
    records: list[Record]
    options: dict[str, object] = field(default_factory=dict)
    wall_seconds: float = 0.0
    source: str = ""  # the file it was read from, for messages

    def to_dict(self) -> dict[str, object]:
        return {"schema": SCHEMA, "machine": self.machine.to_dict(), "options": self.options,
                "wall_seconds": self.wall_seconds, "records": [r.to_dict() for r in self.records]}

    def write(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def check_result(path: Path, data: dict) -> None:
    """The fields of a schema-1 result that its readers use, checked (InputError naming file and field)."""
    check_fields(path, data.get("machine"), Machine, "machine")
    records = data.get("records")
    if not isinstance(records, list):
        raise InputError(f"{path}: field records: expected a list, got {type(records).__name__}")
    for index, record in enumerate(records):
        where = f"records[{index}]"
        check_fields(path, record, Record, where, skip=("timing",))
        if record["status"] not in STATUSES:
            raise InputError(f"{path}: field {where}.status: {record['status']!r}, "
                             f"expected one of {', '.join(STATUSES)}")
        if record.get("latency_ms") and record.get("run"):
            check_fields(path, record["latency_ms"], LatencyFields, f"{where}.latency_ms")
            check_fields(path, record["run"], RunFields, f"{where}.run")
    check_value(path, data.get("options", {}), dict[str, object], "options")
    check_value(path, data.get("wall_seconds", 0.0), float, "wall_seconds")


def read_result(path: str | os.PathLike) -> BenchResult:
    """A schema-1 result file, read as untrusted input (``result_check``); InputError naming the file (and the
    field) when it is not one."""
    path = Path(path)
    data = load_result_json(path)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path}: not an edgefer bench result of schema {SCHEMA} (found {found!r})")
    check_result(path, data)
    try:
        machine = Machine.from_dict(data["machine"])
        records = [Record.from_dict(r) for r in data["records"]]
    except (KeyError, TypeError) as err:
        raise InputError(f"{path}: broken bench result ({one_line(err, typed=True)})") from None
    return BenchResult(machine, records, data.get("options", {}), data.get("wall_seconds", 0.0), str(path))
