"""The two jobs a worker process runs, as JSON files: build a model's artifacts, or time one backend.

A worker answers with JSON lines in ``out``, one per finished unit (an artifact, a record), so
that whatever finished before a crash or a hang is kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgefer.bench.harness import TimingPlan
from edgefer.bench.plan import ArtifactInfo, ModelInfo
from edgefer.fileio import atomic_write_text


@dataclass
class BuildJob:
    model: str
    formats: list[str]
    precisions: list[str]
    torch_weights: bool
    folder: str
    max_batch: int
    out: str
    kind: str = "build"
    opt_batches: list[int] = field(default_factory=list)  # TensorRT: a profile tuned for each benched batch
    contexts: int = 1  # TensorRT: copies of each profile, one per request in flight (throughput mode)


@dataclass
class TimeJob:
    model: ModelInfo
    backend: str
    cells: list[tuple[str, int, int]]  # (precision, batch, threads), grouped by (precision, threads)
    artifacts: dict[str, ArtifactInfo]  # precision -> the artifact this backend runs
    plan: TimingPlan
    out: str
    reference: str | None = None  # npz: validation pixels and PyTorch logits
    data: str | None = None  # npz: labelled face crops for the accuracy column
    allow_fallback: bool = False  # an ONNX Runtime GPU backend may run on CPU, labelled so
    mode: str = "latency"  # or "throughput": in_flight requests at once
    in_flight: int = 1
    kind: str = "time"


def write_job(job: BuildJob | TimeJob, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps(asdict(job)))


def read_job(path: str | os.PathLike) -> BuildJob | TimeJob:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data["kind"] == "build":
        return BuildJob(**data)
    data["model"] = ModelInfo(**data["model"])
    data["cells"] = [tuple(cell) for cell in data["cells"]]
    data["artifacts"] = {k: ArtifactInfo(**v) for k, v in data["artifacts"].items()}
    data["plan"] = TimingPlan(**data["plan"])
    return TimeJob(**data)
