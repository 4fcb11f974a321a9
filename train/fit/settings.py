"""What a training run is told: its data, its loop, and the student's or the teacher's own settings.

Small keyword-only dataclasses, without torch: a study builds them in its driver process, writes them as
JSON (``run_to_dict``) and a worker process reads them back (``run_from_dict``), so a run's settings have
one definition for the CLI, the studies and the worker. A run folder's config.json is the same JSON.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from edgefer.errors import InputError
from edgefer.train.data.options import DataOptions

#: The authors' distillation settings.
DEFAULT_TEMPERATURE = 8.0
DEFAULT_LAMBDA = 0.5
#: The teacher evaluates (and writes its logits) in batches this small: Inception v3 at 299 px is heavy.
TEACHER_EVAL_BATCH = 64


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    epochs: int
    batch_size: int = 64
    lr: float = 1e-4
    seed: int = 0
    eval_every: int = 1  # test-set evaluation every N epochs (and always after the last)
    checkpoint_seconds: float = 300.0  # a mid-epoch checkpoint at most this long after the last one
    eval_batch_size: int = 256


@dataclass(frozen=True, kw_only=True)
class StudentRun:
    """A family member trained on one fold: cross-entropy, or distillation from ``teacher_logits``."""

    kind: ClassVar[str] = "student"
    data: DataOptions
    out: Path
    loop: LoopConfig
    model: str = "p12-xxs"
    dropout: float = 0.5
    teacher_logits: Path | None = None
    temperature: float = DEFAULT_TEMPERATURE
    lam: float = DEFAULT_LAMBDA
    recipe: str = "authors"  # train.fit.recipes: authors (their code as written) or robust


@dataclass(frozen=True, kw_only=True)
class TeacherRun:
    """The Inception v3 teacher trained on one fold at ``input_size``, optionally from ImageNet weights."""

    kind: ClassVar[str] = "teacher"
    data: DataOptions
    out: Path
    loop: LoopConfig
    input_size: int = 299
    imagenet: Path | None = None
    dropout: float = 0.5


RunSettings = StudentRun | TeacherRun
_KINDS: dict[str, type[StudentRun] | type[TeacherRun]] = {"student": StudentRun, "teacher": TeacherRun}
_PATHS = ("out", "teacher_logits", "imagenet")


def run_to_dict(run: RunSettings) -> dict[str, object]:
    """The run as JSON values (paths as strings), with its ``kind``."""
    return {"kind": run.kind, **_jsonable(asdict(run))}


def run_from_dict(data: dict) -> RunSettings:
    """The inverse of ``run_to_dict``; InputError when ``kind`` names no kind of run."""
    values = dict(data)
    kind = values.pop("kind", None)
    if kind not in _KINDS:
        raise InputError(f"run settings of kind {kind!r}: expected one of {', '.join(_KINDS)}")
    values["data"] = DataOptions.from_dict(values["data"])
    values["loop"] = LoopConfig(**values["loop"])
    for key in _PATHS:
        if values.get(key) is not None:
            values[key] = Path(values[key])
    return _KINDS[kind](**values)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value
