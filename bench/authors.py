"""The authors' TensorFlow graph timed beside a bare ONNX Runtime session in one run, as written by
``tools/time_authors_graph.py --json`` and read by ``edgefer report --authors FILE``.

Without such a file the report falls back to :data:`edgefer.bench.paper.AUTHORS_TF_MS`, a constant measured
on another machine, and labels it so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgefer.errors import InputError

SCHEMA = "edgefer.authors-timing/1"


@dataclass(frozen=True)
class AuthorsRow:
    model: str
    batch: int
    threads: int
    tf_ms: float  # per image
    ort_ms: float  # per image, bare ONNX Runtime session, same run
    edgefer: str = ""  # e.g. "edgefer openvino bf16": Recognizer.classify timed in the same blocks
    edgefer_ms: float | None = None

    @property
    def speedup(self) -> float:
        return self.tf_ms / self.ort_ms


@dataclass(frozen=True)
class AuthorsTiming:
    cpu: str
    host: str
    method: str
    rows: tuple[AuthorsRow, ...]
    source: str = ""

    def at(self, batch: int) -> AuthorsRow | None:
        """The row at ``batch`` (batch 1) or at the largest batch above 1 (``batch`` > 1)."""
        rows = [r for r in self.rows if r.batch == batch] if batch == 1 else sorted(
            (r for r in self.rows if r.batch > 1), key=lambda r: -r.batch)
        return rows[0] if rows else None

    def summary(self) -> str:
        parts = []
        for row in filter(None, (self.at(1), self.at(2))):
            threads = f"{row.threads} thread{'s' if row.threads > 1 else ''}"
            ours = ""
            if row.batch == 1:
                if row.edgefer_ms:
                    ours = f", {row.edgefer} {row.edgefer_ms * 1e3:.0f} µs ({row.tf_ms / row.edgefer_ms:.1f}×)"
                parts.append(f"batch 1, {threads}: TF {row.tf_ms * 1e3:.0f} µs vs bare ONNX Runtime "
                             f"{row.ort_ms * 1e3:.0f} µs per image ({row.speedup:.1f}×){ours}")
            else:
                if row.edgefer_ms:
                    ours = f", {row.edgefer} {1e3 / row.edgefer_ms:,.0f} ({row.tf_ms / row.edgefer_ms:.1f}×)"
                parts.append(f"batch {row.batch}, {threads}: TF {1e3 / row.tf_ms:,.0f} vs bare ONNX Runtime "
                             f"{1e3 / row.ort_ms:,.0f} images/s ({row.speedup:.1f}×){ours}")
        return (f"the authors' TensorFlow graph timed in one run with a bare ONNX Runtime session "
                f"(tools/time_authors_graph.py, {self.method}) on {self.cpu} ({self.host}): " + "; ".join(parts))


def read_authors_timing(path: str | os.PathLike) -> AuthorsTiming:
    """A timing file of tools/time_authors_graph.py; InputError naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} file")
        rows = tuple(AuthorsRow(str(r["model"]), int(r["batch"]), int(r["threads"]), float(r["tf_ms_per_image"]),
                                float(r["ort_ms_per_image"]), str(r.get("edgefer", "")),
                                float(r["edgefer_ms_per_image"]) if r.get("edgefer_ms_per_image") else None)
                     for r in data["results"])
        if not rows or any(r.tf_ms <= 0 or r.ort_ms <= 0 for r in rows):
            raise ValueError("no positive timings")
    except FileNotFoundError:
        raise InputError(f"{path}: no such authors' timing file") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a timing file of tools/time_authors_graph.py ({err})") from None
    return AuthorsTiming(str(data.get("cpu", "?")), str(data.get("host", "?")), str(data.get("method", "")), rows,
                         str(path))
