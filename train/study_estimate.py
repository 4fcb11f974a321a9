"""`--dry-run`: the grid, and its cost estimated from short runs measured on the study's own data.

Each student variant in the grid is trained for real in a scratch folder (at its largest size: the size
changes only fc1): 1 epoch, then resumed to 3, so one epoch costs W3 - W1 and a run's fixed cost
(start-up, loading the cached crops, final reports) W1 - epoch. The teacher's epoch is timed from two
training steps of Inception v3 at the teacher input size, scaled to the fold's crop counts. The scratch
folder is removed; nothing is written under STUDY.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from edgefer.errors import InputError
from edgefer.train.configs import SIZES
from edgefer.train.study_exec import run_training, train_argv
from edgefer.train.study_grid import Cell, StudySettings, Task, cells, tasks

MEASURE_EPOCHS = (1, 3)


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


def measured_members(s: StudySettings) -> dict[str, str]:
    """variant -> the member timed for it: the variant at its largest size in the grid."""
    biggest = next(z for z in SIZES if z in s.sizes)
    return {c.model.partition("-")[0]: f"{c.model.partition('-')[0]}-{biggest}" for c in cells(s)}


def estimate(s: StudySettings, jobs: int, threads: int, progress=print) -> Estimate:
    scratch = Path(tempfile.mkdtemp(prefix="edgefer-dry-run-"))
    try:
        start = time.monotonic()
        members = measured_members(s)
        first = next(iter(members.values()))
        _train(s, scratch, "warm-up", first, MEASURE_EPOCHS[0], threads)  # fills the crop cache, if cold
        preprocessing = time.monotonic() - start
        students = {}
        for variant, member in members.items():
            students[variant] = _measure_student(s, scratch, member, threads)
            progress(f"measured {member}: {students[variant].per_epoch:.2f} s per epoch, "
                     f"{students[variant].fixed:.1f} s fixed per run ({threads} thread(s))")
        teacher = None
        if s.needs_teacher and s.teacher_logits_dir is None:
            teacher = _measure_teacher(s, scratch / "warm-up", threads, students[next(iter(students))].fixed)
            progress(f"measured the teacher ({s.teacher_input_size} px): {teacher.per_epoch:.1f} s per epoch")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = 0.0
    for task in tasks(s):
        if task.cell is None:
            seconds += teacher.seconds(s.teacher_epochs or s.epochs)
        else:
            seconds += students[task.cell.model.partition("-")[0]].seconds(s.epochs)
    runs = len(tasks(s))
    return Estimate(runs, students, teacher, max(preprocessing - students[next(iter(students))].seconds(1), 0.0),
                    seconds * threads / 3600, seconds / jobs / 3600)


def _train(s: StudySettings, scratch: Path, key: str, member: str, epochs: int, threads: int) -> float:
    task = Task(key, 0, Cell(member, member))
    outcome = run_training(key, train_argv(replace(s, epochs=epochs), scratch, task, threads),
                           str(task.folder(scratch)), threads)
    if not outcome.ok:
        raise InputError(f"the measured run of {member} failed: {outcome.message}")
    return outcome.seconds


def _measure_student(s: StudySettings, scratch: Path, member: str, threads: int) -> RunCost:
    one = _train(s, scratch, member, member, MEASURE_EPOCHS[0], threads)
    three = _train(s, scratch, member, member, MEASURE_EPOCHS[1], threads)
    per_epoch = max((three - one) / (MEASURE_EPOCHS[1] - MEASURE_EPOCHS[0]), 1e-3)
    return RunCost(max(one - per_epoch, 0.0), per_epoch)


def _measure_teacher(s: StudySettings, run: Path, threads: int, fixed: float) -> RunCost:
    """Two timed training steps (after one warm-up step); evaluation counted as a third of a step per crop."""
    import torch
    import torch.nn.functional as F

    from edgefer.train.teacher import InceptionV3
    from edgefer.train.teacher_train import teacher_input

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
    per_epoch = per_crop * (counts["train_crops"] + counts["test_crops"] / 3)
    return RunCost(fixed + per_crop * counts["train_crops"] / 3, per_epoch)
