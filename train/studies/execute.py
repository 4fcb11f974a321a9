"""Carry out a study's runs in parallel: local worker threads or Ray tasks, each run a `edgefer train` process.

Every run is the train CLI underneath (``python -m edgefer train student|teacher ...``) in its own process
with its own thread count, so a crash stays in its run and Ctrl-C leaves it resumable. A run whose
metrics.json exists is finished and skipped; one without it is started again, and the train loop goes on
from its checkpoint. Runs that need the fold's teacher wait for it; if the teacher failed, they fail too.
"""

from __future__ import annotations

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
from edgefer.train.studies.grid import StudySettings, Task, teacher_logits

LOG_NAME = "train.log"


@dataclass(frozen=True)
class Outcome:
    key: str
    ok: bool
    seconds: float
    message: str = ""


def train_argv(s: StudySettings, study: Path, task: Task, threads: int) -> list[str]:
    """The `edgefer train` command line of one run."""
    out = task.folder(study)
    common = ["--data", s.data, "--dataset", s.dataset, "--split", s.split, "--folds", str(s.folds),
              "--fold", str(task.fold), "--split-seed", str(s.split_seed), "--lr", str(s.lr),
              "--batch-size", str(s.batch_size), "--dropout", str(s.dropout), "--seed", str(s.seed),
              "--threads", str(threads), "--out", str(out)]
    common += ["--subject-regex", s.subject_regex] if s.subject_regex else []
    common += ["--no-detect"] if not s.detect else []
    common += ["--cache", s.cache] if s.cache else []
    if task.cell is None:
        argv = ["teacher", "--epochs", str(s.teacher_epochs or s.epochs), "--input-size", str(s.teacher_input_size)]
        argv += ["--imagenet", s.imagenet] if s.imagenet else []
        return [*argv, *common]
    argv = ["student", "--epochs", str(s.epochs), "--model", task.cell.model]
    if task.cell.distilled:
        argv += ["--teacher-logits", str(teacher_logits(s, study, task.fold)),
                 "--temperature", str(task.cell.temperature), "--lam", str(task.cell.lam)]
    return [*argv, *common]


def run_training(key: str, argv: list[str], folder: str, threads: int) -> Outcome:
    """One run as a child process; its output goes to RUN/train.log. Runs on a Ray worker as well."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.monotonic()
    with open(Path(folder) / LOG_NAME, "a", encoding="utf-8") as log:
        code = subprocess.call([sys.executable, "-m", "edgefer", "train", *argv], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, env=env)
    seconds = time.monotonic() - start
    if code == 0:
        return Outcome(key, True, seconds)
    return Outcome(key, False, seconds, f"exit {code}: {last_line(Path(folder) / LOG_NAME) or 'no output'}")


class LocalPool:
    """Runs on this machine, ``jobs`` at a time."""

    def __init__(self, jobs: int):
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="edgefer-study")
        self.jobs = jobs

    def submit(self, key: str, argv: list[str], folder: str, threads: int):
        return self.pool.submit(run_training, key, argv, folder, threads)

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

    def submit(self, key: str, argv: list[str], folder: str, threads: int):
        return self.remote.remote(key, argv, folder, threads)

    def wait_any(self, handles: list) -> list:
        done, _ = self.ray.wait(handles, num_returns=1)
        return [(h, self._result(h)) for h in done]

    def _result(self, handle) -> Outcome | str:
        try:
            return self.ray.get(handle)
        except Exception as err:  # noqa: BLE001 - a lost worker or node: the run failed, the study goes on
            return f"ray: {one_line(err, typed=True)}"

    def close(self, cancel: bool = False) -> None:
        if self.started:
            self.ray.shutdown()


def execute(s: StudySettings, study: Path, todo: list[Task], pool, threads: int,
            report: Callable[[Task, Outcome, int, int], None]) -> list[Outcome]:
    """Run ``todo`` (unfinished runs), at most ``pool.jobs`` at once, each after the run it needs."""
    tasks = {t.key: t for t in todo}
    waiting, running, outcomes = list(todo), {}, {}
    try:
        while waiting or running:
            for task in _ready(waiting, outcomes, tasks):
                if task.after in outcomes and not outcomes[task.after].ok:
                    waiting.remove(task)
                    outcomes[task.key] = Outcome(task.key, False, 0.0, f"{task.after} failed")
                    report(task, outcomes[task.key], len(outcomes), len(tasks))
                elif len(running) < pool.jobs:
                    waiting.remove(task)
                    argv = train_argv(s, study, task, threads)
                    running[pool.submit(task.key, argv, str(task.folder(study)), threads)] = task
            if not running:
                continue
            for handle, outcome in pool.wait_any(list(running)):
                task = running.pop(handle)
                if isinstance(outcome, str):
                    outcome = Outcome(task.key, False, 0.0, outcome)
                outcomes[task.key] = outcome
                report(task, outcome, len(outcomes), len(tasks))
    except BaseException:
        pool.close(cancel=True)
        raise
    pool.close()
    return [outcomes[t.key] for t in todo]


def _ready(waiting: list[Task], outcomes: dict[str, Outcome], tasks: dict[str, Task]) -> list[Task]:
    """Tasks whose prerequisite is finished (or not part of this invocation: done earlier)."""
    return [t for t in waiting if t.after is None or t.after not in tasks or t.after in outcomes]
