"""Run (or resume) a study in its folder: check the settings against study.json, train what is unfinished,
write the reports, return the results. No torch here: every run is a worker process."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgefer.errors import InputError
from edgefer.fileio import check_output_folder
from edgefer.train.fit.reports import write_json
from edgefer.train.studies.execute import LocalPool, RayPool, RunOutcome, execute
from edgefer.train.studies.grid import StudySettings, Task, check_settings, tasks, teacher_logits
from edgefer.train.studies.report import study_results, write_reports

#: Settings added since a study folder may have been started, with the value such a study had.
OLDER_DEFAULTS = {"recipe": "authors"}


@dataclass(frozen=True)
class StudyResult:
    """What a study did now (``outcomes`` of the runs trained) and its results so far: per cell, the test
    accuracy per fold and its mean +- std over the finished folds (report.cell_result, as in results.json)."""

    runs: int
    skipped: int
    outcomes: list[RunOutcome]
    cells: list[dict[str, object]]
    written: list[Path]

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]


def finished(study: Path, task: Task) -> bool:
    return (task.folder(study) / "metrics.json").exists()


def claim_folder(s: StudySettings, study: Path) -> None:
    """Write study.json, or refuse when the folder holds a study started with other settings."""
    path = study / "study.json"
    if path.exists():
        saved = {**OLDER_DEFAULTS, **json.loads(path.read_text())}
        changed = [f"{k} {v!r} (was {saved.get(k)!r})" for k, v in s.to_dict().items() if saved.get(k) != v]
        if changed:
            raise InputError(f"{study} holds a study started with other settings: {'; '.join(changed)}; "
                             "use another --out or the same settings")
        return
    check_output_folder(study)
    if study.exists() and any(study.iterdir()):
        raise InputError(f"{study}: exists and is not a study folder (no study.json)")
    study.mkdir(parents=True, exist_ok=True)
    write_json(path, s.to_dict())


def check_teacher_logits(s: StudySettings, study: Path) -> None:
    if s.teacher_logits_dir is None or not s.needs_teacher:
        return
    missing = [k for k in range(s.folds) if not teacher_logits(s, study, k).is_file()]
    if missing:
        raise InputError(f"--teacher-logits-dir {s.teacher_logits_dir}: no fold-K/teacher_logits.safetensors "
                         f"for folds {', '.join(map(str, missing))}")


def run_study(s: StudySettings, study: Path, jobs: int, threads: int, ray: str | None,
              report: Callable[[Task, RunOutcome, int, int], None]) -> StudyResult:
    """Train every unfinished run (a crashed one goes on from its checkpoint), then aggregate."""
    check_settings(s)
    check_teacher_logits(s, study)
    claim_folder(s, study)
    every = tasks(s)
    todo = [t for t in every if not finished(study, t)]
    outcomes = []
    if todo:
        pool = RayPool(ray, threads, jobs) if ray else LocalPool(jobs)
        outcomes = execute(s, study, todo, pool, threads, report)
    failed = [f"{o.key}: {o.message}" for o in outcomes if not o.ok]
    results = study_results(s, study)
    return StudyResult(len(every), len(every) - len(todo), outcomes, results, write_reports(s, study, results, failed))
