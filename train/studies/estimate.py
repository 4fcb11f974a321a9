"""`--dry-run`: the grid, and its cost estimated from short runs measured on the study's own data.

The crops are prepared first (cached, as the study's first run would). Then each student variant in
the grid trains for real for 2 epochs in a scratch folder, at its largest size (the size changes only
fc1): an epoch costs its training seconds (metrics.jsonl) plus the test-fold evaluation, and a run's
fixed cost (start-up, loading, final reports) is the rest of the wall time. The teacher's epoch is
timed from two training steps of Inception v3 at the teacher input size, scaled to the fold's crop
counts. The scratch folder is removed; nothing is written under STUDY.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from edgefer.errors import InputError
from edgefer.train.fit.settings import run_to_dict
from edgefer.train.models.configs import SIZES
from edgefer.train.studies.execute import run_settings, run_training
from edgefer.train.studies.grid import StudyCell, StudySettings, Task, cells, tasks

MEASURE_EPOCHS = 2
EVAL_SHARE = 1 / 3  # a forward pass costs about a third of a training step per crop


@dataclass(frozen=True)
class RunCost:
    """Seconds of one run: fixed + epochs * per_epoch."""

    fixed: float
    per_epoch: float

    def seconds(self, epochs: int) -> float:
        return self.fixed + epochs * self.per_epoch


@dataclass(frozen=True)
class Estimate:
    runs: int
    students: dict[str, RunCost]  # variant -> cost of one of its runs
    teacher: RunCost | None
    preprocessing: float
    cpu_hours: float
    wall_hours: float
    student_cpu_hours: float = 0.0
    teacher_cpu_hours: float = 0.0
    teacher_runs: int = 0


def measured_members(s: StudySettings) -> dict[str, str]:
    """variant -> the member timed for it: the variant at its largest size in the grid."""
    biggest = next(z for z in SIZES if z in s.sizes)
    return {c.model.partition("-")[0]: f"{c.model.partition('-')[0]}-{biggest}" for c in cells(s)}


def estimate(s: StudySettings, jobs: int, threads: int, progress=print) -> Estimate:
    """Measure, saying what is being measured before each step (a dry run takes minutes), then add up."""
    scratch = Path(tempfile.mkdtemp(prefix="edgefer-dry-run-"))
    try:
        progress(f"preparing the face crops of {s.data} (Haar detection, cached for the study)")
        preprocessing = _prepare_crops(s)
        students = {}
        for variant, member in measured_members(s).items():
            progress(f"measuring {member}: {MEASURE_EPOCHS} epochs of fold 0 in a scratch folder")
            students[variant] = _measure_student(s, scratch, member, threads)
            progress(f"measured {member}: {students[variant].per_epoch:.2f} s per epoch, "
                     f"{students[variant].fixed:.1f} s fixed per run ({threads} thread(s))")
        teacher = None
        if s.needs_teacher and s.teacher_logits_dir is None:
            first = next(iter(students.values()))
            progress(f"measuring the teacher (Inception v3 at {s.teacher_input_size} px): 3 training steps")
            teacher = _measure_teacher(s, next(scratch.iterdir()), threads, first.fixed)
            progress(f"measured the teacher ({s.teacher_input_size} px): {teacher.per_epoch:.1f} s per epoch")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    every = tasks(s)
    teacher_runs = [t for t in every if t.cell is None]
    teacher_seconds = sum(teacher.seconds(s.teacher_epochs or s.epochs) for _ in teacher_runs) if teacher else 0.0
    student_seconds = sum(students[t.cell.model.partition("-")[0]].seconds(s.epochs) for t in every
                          if t.cell is not None)
    seconds = teacher_seconds + student_seconds
    return Estimate(len(every), students, teacher, preprocessing, seconds * threads / 3600, seconds / jobs / 3600,
                    student_seconds * threads / 3600, teacher_seconds * threads / 3600, len(teacher_runs))


def _prepare_crops(s: StudySettings) -> float:
    """Detect and crop the faces once (cached) so that the measured runs time training, not preprocessing."""
    from edgefer.train.data.crops import load_crops
    from edgefer.train.data.datasets import LayoutOptions, read_dataset

    start = time.monotonic()
    samples = read_dataset(s.dataset, Path(s.data), LayoutOptions(subject_regex=s.subject_regex))
    load_crops(samples, s.cache, detect=s.detect)
    return time.monotonic() - start


def _measure_student(s: StudySettings, scratch: Path, member: str, threads: int) -> RunCost:
    task = Task(member, 0, StudyCell(member, member))
    outcome = run_training(member, run_to_dict(run_settings(replace(s, epochs=MEASURE_EPOCHS), scratch, task)),
                           threads)
    if not outcome.ok:
        raise InputError(f"the measured run of {member} failed: {outcome.message}")
    metrics = json.loads((task.folder(scratch) / "metrics.json").read_text())
    train = metrics["train_seconds"] / MEASURE_EPOCHS
    per_epoch = train * (1 + EVAL_SHARE * metrics["test_crops"] / metrics["train_crops"])
    return RunCost(max(outcome.seconds - MEASURE_EPOCHS * per_epoch, 0.0), per_epoch)


def _measure_teacher(s: StudySettings, run: Path, threads: int, fixed: float) -> RunCost:
    """Two timed training steps (after a warm-up step); the logits pass at the end adds EVAL_SHARE per crop."""
    import torch
    import torch.nn.functional as F

    from edgefer.train.fit.teacher import teacher_input
    from edgefer.train.models.teacher import InceptionV3

    counts = json.loads((run / "metrics.json").read_text())
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = InceptionV3(num_classes=8, in_channels=3, dropout=s.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    prepare = teacher_input(s.teacher_input_size)
    batch = min(s.batch_size, counts["train_crops"])
    inputs, labels = torch.randint(0, 256, (batch, 1, 84, 84), dtype=torch.uint8), torch.randint(0, 8, (batch,))
    timings = []
    for _ in range(3):
        start = time.monotonic()
        optimizer.zero_grad()
        F.cross_entropy(model(prepare(inputs)), labels).backward()
        optimizer.step()
        timings.append(time.monotonic() - start)
    per_crop = sum(timings[1:]) / (len(timings) - 1) / batch
    per_epoch = per_crop * (counts["train_crops"] + EVAL_SHARE * counts["test_crops"])
    return RunCost(fixed + EVAL_SHARE * per_crop * counts["train_crops"], per_epoch)
