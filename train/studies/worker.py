"""One run of a study: ``python -m edgefer.train.studies.worker JOB.json`` trains it in this process.

JOB.json holds the run's settings as ``run_to_dict`` wrote them (edgefer.train.fit.settings) and the torch
thread count: ``{"run": {...}, "threads": N}``. The study writes it into the run folder and starts this
module there or on a Ray worker; renaming a CLI option cannot break it. Output (one line per epoch, then
the result) goes to stdout, which the study sends to RUN/train.log. Exit codes are the CLI's: 0 done, 2-5
an edgefer error (its message is the last line), 130 interrupted or 143 terminated (the run resumes from
its checkpoint), 1 a bug (its traceback is above).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from edgefer import interrupt
from edgefer.errors import EdgeferError
from edgefer.fileio import atomic_write_text
from edgefer.train.fit.loop import Hooks
from edgefer.train.fit.settings import RunSettings, StudentRun, run_from_dict, run_to_dict


@dataclass(frozen=True)
class RunJob:
    run: RunSettings
    threads: int


def write_job(job: RunJob, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps({"run": run_to_dict(job.run), "threads": job.threads}, indent=1))


def read_job(path: str | os.PathLike) -> RunJob:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return RunJob(run_from_dict(data["run"]), int(data["threads"]))


class _LogHooks(Hooks):
    """One line per epoch on stdout (the run's train.log)."""

    def on_start(self, first_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        print(f"epochs {first_epoch + 1}..{epochs}, {steps_per_epoch} steps each", flush=True)

    def on_epoch(self, record: dict) -> None:
        tested = f" test accuracy {record['test_accuracy']:.2%}" if "test_accuracy" in record else ""
        print(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}{tested}", flush=True)


def train_job(job: RunJob) -> dict:
    """Train the job's run (resuming it from its checkpoint); its final metrics."""
    import torch

    torch.set_num_threads(job.threads)
    if isinstance(job.run, StudentRun):
        from edgefer.train.fit.student import train_student as train
    else:
        from edgefer.train.fit.teacher import train_teacher as train
    return train(job.run, hooks=_LogHooks())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    interrupt.raise_on_sigterm()  # a stopped study's SIGTERM checkpoints like Ctrl-C, then exit 143
    try:
        metrics = train_job(read_job(argv[0]))
    except EdgeferError as err:
        print(f"edgefer: error: {' '.join(str(err).split())}", flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        print("edgefer: interrupted: the run resumes from its checkpoint", flush=True)
        return interrupt.exit_code()
    print(f"{metrics['model']} fold {metrics['fold']}: test accuracy {metrics['test_accuracy']:.2%} per crop, "
          f"{metrics['test_accuracy_image']:.2%} per image after {metrics['epochs']} epochs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
