"""Run one job in a worker process and watch it: results as they come, a crash or a hang as a reason.

The timeout is a watchdog, not a budget: it restarts with every result the worker reports, so a
long job of many quick cells is fine and a call that never returns is caught after ``timeout``
seconds. The worker is then killed with its whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgefer.bench.jobs import BuildJob, TimeJob, write_job
from edgefer.fileio import last_line

POLL_SECONDS = 0.1


@dataclass
class WorkerOutcome:
    """What a worker process reported before it ended, and why it did not end cleanly."""

    items: list[dict] = field(default_factory=list)
    failure: str = ""  # why the worker did not finish cleanly; "" when it did


def worker_env() -> dict[str, str]:
    """The worker's environment: this one with TF32 off for every CUDA library it loads
    (``NVIDIA_TF32_OVERRIDE=0``, read once per process). ONNX Runtime's TensorRT provider has no TF32
    switch of its own, so its fp32 cells would otherwise run TF32 convolutions on Ampere and later GPUs;
    PyTorch's and ONNX Runtime CUDA's own switches are set per cell as well, and fp16/int8 are unaffected."""
    return {**os.environ, "NVIDIA_TF32_OVERRIDE": "0"}


def run_worker(job: BuildJob | TimeJob, job_path: Path, timeout: float,
               on_item: Callable[[dict], None] = lambda _: None) -> WorkerOutcome:
    """Start ``python -m edgefer.bench.worker`` on ``job`` and collect its JSON lines until it ends."""
    write_job(job, job_path)
    out, log_path = Path(job.out), job_path.with_suffix(".log")
    out.write_bytes(b"")
    outcome = WorkerOutcome()
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "edgefer.bench.worker", str(job_path)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=os.name == "posix", env=worker_env())
        reader = _LineReader(out)
        deadline = time.monotonic() + timeout
        while True:
            code = process.poll()
            for item in reader.new_items():
                outcome.items.append(item)
                on_item(item)
                deadline = time.monotonic() + timeout
            if code is not None:
                break
            if time.monotonic() > deadline:
                _kill(process)
                outcome.failure = f"timed out: no result for {timeout:g} s, worker killed"
                return outcome
            time.sleep(POLL_SECONDS)
    if code != 0:
        outcome.failure = _crash_reason(code, log_path)
    return outcome


class _LineReader:
    """Complete JSON lines appended to a file since the last call."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = path, 0, b""

    def new_items(self) -> list[dict]:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]


def _kill(process: subprocess.Popen) -> None:
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        process.kill()
    process.wait()


def _crash_reason(code: int, log_path: Path) -> str:
    if code < 0:
        try:
            what = f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            what = f"crashed (signal {-code})"
    else:
        what = f"exited with code {code}"
    tail = last_line(log_path)
    return f"worker {what}" + (f": {tail}" if tail else "")
