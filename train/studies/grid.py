"""The paper's three studies as grids of training runs (no torch): cells, their folders, the paper's figures.

A study is a set of cells (one student configuration each) trained on every fold of one split:
- pooling: variants v, p1, p2, p12 x sizes M, S, XS, XXS, cross-entropy only (slides, "Max pooling vs. No pooling");
- temperature: p12 students x sizes x T in {2, 4, 8, 16, 20, 32, 64}, distilled from the fold's teacher logits;
- supervision: the same students with (lambda) and without (cross-entropy) the teacher, accuracy per epoch.

STUDY/
  study.json                 the settings (a rerun with other settings is refused)
  teacher/fold-K/            the teacher of fold K (temperature, supervision), a normal run folder
  runs/<cell>/fold-K/        one normal run folder per cell and fold; metrics.json marks it finished
  results.json, pooling.md/.csv, temperature.png/.csv, supervision.png/.csv
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edgefer.errors import InputError
from edgefer.train.data.datasets import check_subjects_named
from edgefer.train.fit.recipes import get_recipe
from edgefer.train.models.configs import SIZES, VARIANTS

STUDIES = ("pooling", "temperature", "supervision")
TEMPERATURES = (2.0, 4.0, 8.0, 16.0, 20.0, 32.0, 64.0)
#: The paper's students for distillation ("Teacher and Student Models"): the default of temperature, supervision.
DISTILLED_VARIANTS = ("p12",)

#: The slides' pooling tables: test accuracy (%) per split, dataset and family member.
PAPER_POOLING: dict[str, dict[str, dict[str, float]]] = {
    "random": {
        "ck": {"v-m": 97.93, "p1-m": 97.99, "p2-m": 97.41, "p12-m": 97.39,
               "v-s": 96.65, "p1-s": 96.73, "p2-s": 94.09, "p12-s": 94.39,
               "v-xs": 93.41, "p1-xs": 91.85, "p2-xs": 86.84, "p12-xs": 88.07,
               "v-xxs": 81.91, "p1-xxs": 69.05, "p2-xxs": 77.74, "p12-xxs": 78.52},
        "oulu": {"v-m": 97.68, "p1-m": 97.79, "p2-m": 96.64, "p12-m": 97.47,
                 "v-s": 92.95, "p1-s": 93.22, "p2-s": 88.61, "p12-s": 88.72,
                 "v-xs": 88.73, "p1-xs": 80.16, "p2-xs": 77.88, "p12-xs": 77.04,
                 "v-xxs": 73.64, "p1-xxs": 52.99, "p2-xxs": 66.84, "p12-xxs": 61.71},
    },
    "subject": {
        "ck": {"v-m": 81.23, "p1-m": 81.57, "p2-m": 78.77, "p12-m": 79.95,
               "v-s": 79.73, "p1-s": 81.25, "p2-s": 78.75, "p12-s": 79.71,
               "v-xs": 77.14, "p1-xs": 77.14, "p2-xs": 78.42, "p12-xs": 79.78,
               "v-xxs": 71.36, "p1-xxs": 67.04, "p2-xxs": 76.91, "p12-xxs": 78.44},
        "oulu": {"v-m": 60.87, "p1-m": 62.46, "p2-m": 60.21, "p12-m": 60.53,
                 "v-s": 58.18, "p1-s": 59.49, "p2-s": 57.37, "p12-s": 57.25,
                 "v-xs": 53.73, "p1-xs": 53.41, "p2-xs": 57.51, "p12-xs": 57.54,
                 "v-xxs": 44.33, "p1-xxs": 34.04, "p2-xxs": 54.62, "p12-xxs": 55.03},
    },
}


@dataclass(frozen=True)
class StudySettings:
    """Everything that decides a study's results (not how many jobs carry it)."""

    study: str
    data: str
    dataset: str
    split: str = "subject"
    folds: int = 10
    epochs: int = 3000
    variants: tuple[str, ...] = VARIANTS
    sizes: tuple[str, ...] = SIZES
    temperatures: tuple[float, ...] = TEMPERATURES
    temperature: float = 8.0  # supervision: the T of the supervised students
    lam: float = 0.5
    lr: float = 1e-4
    batch_size: int = 64
    dropout: float = 0.5
    seed: int = 0
    split_seed: int = 0
    subject_regex: str | None = None
    detect: bool = True
    cache: str | None = None
    teacher_epochs: int | None = None
    teacher_input_size: int = 299
    teacher_logits_dir: str | None = None
    imagenet: str | None = None
    recipe: str = "authors"  # the students' training recipe (train.fit.recipes)

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def needs_teacher(self) -> bool:
        return self.study in ("temperature", "supervision")


@dataclass(frozen=True)
class StudyCell:
    """One student configuration of a study; trained once per fold."""

    name: str
    model: str
    temperature: float | None = None  # None: cross-entropy, no teacher
    lam: float | None = None

    @property
    def distilled(self) -> bool:
        return self.temperature is not None


@dataclass(frozen=True)
class Task:
    """One training run: a cell (or the teacher) on one fold, in its own folder under STUDY."""

    key: str  # e.g. runs/p12-xs-T8/fold-3 or teacher/fold-3
    fold: int
    cell: StudyCell | None  # None: the fold's teacher
    after: str | None = None  # the key of the run it needs first (the fold's teacher)

    def folder(self, study: Path) -> Path:
        return study / self.key


def check_settings(s: StudySettings) -> None:
    if s.study not in STUDIES:
        raise InputError(f"unknown study {s.study!r}: expected one of {', '.join(STUDIES)}")
    if not Path(s.data).is_dir():
        raise InputError(f"--data {s.data}: no such folder")
    if s.dataset not in ("ck", "oulu", "folder"):
        raise InputError(f"--dataset {s.dataset!r}: expected ck, oulu or folder")
    if s.split not in ("random", "subject"):
        raise InputError(f"--split {s.split!r}: expected random or subject")
    check_subjects_named(s.dataset, s.split, s.subject_regex)
    if s.folds < 2 or s.epochs < 1:
        raise InputError("--folds must be >= 2 and --epochs >= 1")
    for name, given, known in (("--variants", s.variants, VARIANTS), ("--sizes", s.sizes, SIZES)):
        unknown = [x for x in given if x not in known]
        if unknown or not given:
            raise InputError(f"{name} {','.join(given)}: expected some of {','.join(known)}")
    if not s.temperatures or any(t <= 0 for t in s.temperatures):
        raise InputError(f"--temperatures {s.temperatures}: expected positive values")
    get_recipe(s.recipe)
    if s.teacher_logits_dir is not None and not Path(s.teacher_logits_dir).is_dir():
        raise InputError(f"--teacher-logits-dir {s.teacher_logits_dir}: no such folder")


def cells(s: StudySettings) -> list[StudyCell]:
    """The study's cells, in the order of the paper's tables and plots."""
    if s.study == "pooling":
        return [StudyCell(f"{v}-{z}", f"{v}-{z}") for z in s.sizes for v in s.variants]
    members = [f"{v}-{z}" for z in s.sizes for v in s.variants]
    if s.study == "temperature":
        return [StudyCell(f"{m}-T{t:g}", m, t, s.lam) for m in members for t in s.temperatures]
    return [c for m in members for c in (StudyCell(f"{m}-ce", m), StudyCell(f"{m}-kd", m, s.temperature, s.lam))]


def tasks(s: StudySettings) -> list[Task]:
    """Every run of the study: the teachers first (unless given), then every cell on every fold."""
    own_teacher = s.needs_teacher and s.teacher_logits_dir is None
    out = [Task(f"teacher/fold-{k}", k, None) for k in range(s.folds)] if own_teacher else []
    for cell in cells(s):
        for k in range(s.folds):
            after = f"teacher/fold-{k}" if own_teacher and cell.distilled else None
            out.append(Task(f"runs/{cell.name}/fold-{k}", k, cell, after))
    return out


def teacher_logits(s: StudySettings, study: Path, fold: int) -> Path:
    """The logits a distilled cell of this fold reads: the study's own teacher, or --teacher-logits-dir."""
    root = Path(s.teacher_logits_dir) if s.teacher_logits_dir else study / "teacher"
    return root / f"fold-{fold}" / "teacher_logits.safetensors"

