"""Carry out a study's runs in parallel: local worker threads or Ray tasks, each run a worker process.

Every run is its settings (edgefer.train.fit.settings), written to RUN/job.json and trained by
``python -m edgefer.train.studies.worker RUN/job.json`` in its own process with its own thread count, so a
crash stays in its run and Ctrl-C leaves it resumable. A run whose metrics.json exists is finished and
skipped; one without it is started again, and the train loop goes on from its checkpoint. Runs that need
the fold's teacher wait for it; if the teacher failed, they fail too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from edgefer.errors import BackendUnavailable, one_line
from edgefer.fileio import last_line
from edgefer.train.data.datasets import LayoutOptions
from edgefer.train.data.options import DataOptions
from edgefer.train.fit.settings import (
    TEACHER_EVAL_BATCH,
    LoopConfig,
    RunSettings,
    StudentRun,
    TeacherRun,
    run_from_dict,
    run_to_dict,
)
from edgefer.train.studies.grid import StudySettings, Task, teacher_logits
from edgefer.train.studies.worker import RunJob, write_job

LOG_NAME = "train.log"
JOB_NAME = "job.json"


@dataclass(frozen=True)
class RunOutcome:
    """How one run of a study ended; ``test_accuracy`` (per crop) when it finished, and why it collapsed
    to one class if it did (train.fit.collapse)."""

    key: str
    ok: bool
    seconds: float
    message: str = ""
    test_accuracy: float | None = None
    collapsed: str | None = None


def run_settings(s: StudySettings, study: Path, task: Task) -> RunSettings:
    """The settings of one run of the study."""
    data = DataOptions(root=Path(s.data), dataset=s.dataset, layout=LayoutOptions(subject_regex=s.subject_regex),
                       split=s.split, folds=s.folds, fold=task.fold, split_seed=s.split_seed, detect=s.detect,
                       cache_dir=s.cache)
    out = task.folder(study)
    if task.cell is None:
        loop = LoopConfig(epochs=s.teacher_epochs or s.epochs, batch_size=s.batch_size, lr=s.lr,
                          seed=s.seed, eval_batch_size=TEACHER_EVAL_BATCH)
        return TeacherRun(data=data, out=out, loop=loop, input_size=s.teacher_input_size,
                          imagenet=Path(s.imagenet) if s.imagenet else None, dropout=s.dropout)
    loop = LoopConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=s.seed)
    cell = task.cell
    if not cell.distilled:
        return StudentRun(data=data, out=out, loop=loop, model=cell.model, dropout=s.dropout, recipe=s.recipe)
    return StudentRun(data=data, out=out, loop=loop, model=cell.model, dropout=s.dropout, recipe=s.recipe,
                      teacher_logits=teacher_logits(s, study, task.fold), temperature=cell.temperature, lam=cell.lam)


def run_training(key: str, settings: dict, threads: int) -> RunOutcome:
    """One run (its settings as ``run_to_dict`` gives them) in a worker process; its output goes to
    RUN/train.log. Runs on a Ray worker as well."""
    run = run_from_dict(settings)
    folder = Path(run.out)
    folder.mkdir(parents=True, exist_ok=True)
    job = write_job(RunJob(run, threads), folder / JOB_NAME)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.monotonic()
    with open(folder / LOG_NAME, "a", encoding="utf-8") as log:
        code = subprocess.call([sys.executable, "-m", "edgefer.train.studies.worker", str(job)], stdout=log,
                               stderr=log, stdin=subprocess.DEVNULL, env=env)
    seconds = time.monotonic() - start
    if code != 0:
        return RunOutcome(key, False, seconds, f"exit {code}: {last_line(folder / LOG_NAME) or 'no output'}")
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    collapsed = metrics["collapse"]["reason"] if metrics.get("collapsed") else None
    return RunOutcome(key, True, seconds, test_accuracy=metrics["test_accuracy"], collapsed=collapsed)


class LocalPool:
    """Runs on this machine, ``jobs`` at a time."""

    def __init__(self, jobs: int):
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="edgefer-study")
        self.jobs = jobs

    def submit(self, key: str, settings: dict, threads: int):
        return self.pool.submit(run_training, key, settings, threads)

    def wait_any(self, handles: list) -> list:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return [(h, h.result()) for h in done]

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)


class RayPool:
    """Runs as Ray tasks of ``threads`` CPUs each; ``address`` 'local' starts a Ray instance on this machine.

    On a cluster of several machines the STUDY folder (and --data, --cache) must be on storage every
    node mounts at the same path, with edgefer[train] installed on every node.
    """

    def __init__(self, address: str, threads: int, jobs: int | None):
        try:
            import ray
        except ModuleNotFoundError:
            raise BackendUnavailable("--ray needs ray, which is not installed: pip install 'edgefer[ray]'") from None
        self.ray, self.started = ray, not ray.is_initialized()
        if self.started:
            options = {"num_cpus": max(os.cpu_count() or 1, threads)} if address == "local" else {"address": address}
            ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        self.remote = ray.remote(num_cpus=threads, max_retries=0)(run_training)
        self.jobs = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)

    def submit(self, key: str, settings: dict, threads: int):
        return self.remote.remote(key, settings, threads)

    def wait_any(self, handles: list) -> list:
        done, _ = self.ray.wait(handles, num_returns=1)
        return [(h, self._result(h)) for h in done]

    def _result(self, handle) -> RunOutcome | str:
        try:
            return self.ray.get(handle)
        except Exception as err:  # noqa: BLE001 - a lost worker or node: the run failed, the study goes on
            return f"ray: {one_line(err, typed=True)}"

    def close(self, cancel: bool = False) -> None:
        if self.started:
            self.ray.shutdown()


def execute(s: StudySettings, study: Path, todo: list[Task], pool, threads: int,
            report: Callable[[Task, RunOutcome, int, int], None]) -> list[RunOutcome]:
    """Run ``todo`` (unfinished runs), at most ``pool.jobs`` at once, each after the run it needs."""
    tasks = {t.key: t for t in todo}
    waiting, running, outcomes = list(todo), {}, {}
    try:
        while waiting or running:
            for task in _ready(waiting, outcomes, tasks):
                if task.after in outcomes and not outcomes[task.after].ok:
                    waiting.remove(task)
                    outcomes[task.key] = RunOutcome(task.key, False, 0.0, f"{task.after} failed")
                    report(task, outcomes[task.key], len(outcomes), len(tasks))
                elif len(running) < pool.jobs:
                    waiting.remove(task)
                    settings = run_to_dict(run_settings(s, study, task))
                    running[pool.submit(task.key, settings, threads)] = task
            if not running:
                continue
            for handle, outcome in pool.wait_any(list(running)):
                task = running.pop(handle)
                if isinstance(outcome, str):
                    outcome = RunOutcome(task.key, False, 0.0, outcome)
                outcomes[task.key] = outcome
                report(task, outcome, len(outcomes), len(tasks))
    except BaseException:
        pool.close(cancel=True)
        raise
    pool.close()
    return [outcomes[t.key] for t in todo]


def _ready(waiting: list[Task], outcomes: dict[str, RunOutcome], tasks: dict[str, Task]) -> list[Task]:
    """Tasks whose prerequisite is finished (or not part of this invocation: done earlier)."""
    return [t for t in waiting if t.after is None or t.after not in tasks or t.after in outcomes]
