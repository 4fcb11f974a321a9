"""Throughput mode: several requests in flight at once, as benchmark_app's ``-hint throughput -nireq N``.

Each request's latency is timed from its start to its completion while the others run, so the
distribution is the latency under that load; images/s is completed images over the wall time. Two
ways to keep N requests in flight, both the runtimes' own:

- :func:`threaded`: N threads, each calling the backend in a loop. ONNX Runtime runs concurrent
  ``run`` calls on one session; edgefer's TensorRT backend gives each concurrent caller its own
  execution context and CUDA stream, so N threads are N streams in flight on the GPU; the eager
  torch-cuda runner gives each thread a call with its own CUDA stream and buffers.
- :func:`openvino_async`: an ``AsyncInferQueue`` of N infer requests on a model compiled with the
  THROUGHPUT hint (OpenVINO picks the streams); the main thread submits as requests free up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from edgefer.bench.harness import Timing, TimingPlan, summarize


@dataclass(frozen=True)
class LoadResult:
    timing: Timing  # per-request latency under load
    images_per_second: float
    wall_seconds: float


def _done(plan: TimingPlan, count: int, elapsed_ns: int) -> bool:
    return elapsed_ns >= plan.max_seconds * 1e9 or (elapsed_ns >= plan.min_seconds * 1e9 and count >= plan.min_iters)


def threaded(calls: Sequence[Callable[[], object]], batch: int, plan: TimingPlan,
             context: Callable[[], AbstractContextManager] = contextlib.nullcontext) -> LoadResult:
    """One thread per call in ``calls`` (one per request in flight), each calling its own in a loop until the
    plan's minimums are met (after a short warm-up). Each thread enters ``context()`` around its loop: state
    a runtime keeps per thread (torch's inference mode) must be set in every thread."""
    warm = TimingPlan(min_iters=len(calls), min_seconds=min(plan.warmup_seconds, 1.0),
                      max_seconds=max(plan.warmup_seconds, 1.0))
    _run_threads(calls, context, warm)
    samples, wall_ns = _run_threads(calls, context, plan)
    return _result(samples, wall_ns, batch, plan)


def _run_threads(calls: Sequence[Callable[[], object]], context: Callable[[], AbstractContextManager],
                 plan: TimingPlan) -> tuple[list[int], int]:
    """Every thread starts its loop together (a barrier; the clock starts there), and the plan's minimums
    count only once each has finished a call: N requests in flight means N ran, however the OS scheduled
    their threads."""
    samples: list[int] = []
    ran: set[int] = set()
    stop = threading.Event()
    errors: list[BaseException] = []
    clock = time.perf_counter_ns
    start = [0]
    ready = threading.Barrier(len(calls), action=lambda: start.__setitem__(0, clock()))

    def worker(index: int, call: Callable[[], object]) -> None:
        append = samples.append  # list.append is atomic under the GIL
        try:
            with context():
                ready.wait()
                while not stop.is_set():
                    before = clock()
                    call()
                    after = clock()
                    append(after - before)
                    ran.add(index)
                    elapsed = after - start[0]
                    if _done(plan, len(samples), elapsed) and (len(ran) == len(calls)
                                                               or elapsed >= plan.max_seconds * 1e9):
                        stop.set()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(err)
            stop.set()
            ready.abort()  # the others stop waiting for this one

    threads = [threading.Thread(target=worker, args=item, daemon=True) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return samples, clock() - start[0]


def openvino_async(compiled, pixels: np.ndarray, in_flight: int, plan: TimingPlan) -> LoadResult:
    """``in_flight`` OpenVINO infer requests kept busy through an AsyncInferQueue."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, in_flight)
    samples: list[int] = []
    clock = time.perf_counter_ns
    queue.set_callback(lambda request, started: samples.append(clock() - started))
    tensor = ov.Tensor(np.ascontiguousarray(pixels, dtype=np.float32))
    for warm in (True, False):
        samples.clear()
        limit = TimingPlan(min_iters=in_flight, min_seconds=min(plan.warmup_seconds, 1.0),
                           max_seconds=max(plan.warmup_seconds, 1.0)) if warm else plan
        start = submitted = clock()
        while not _done(limit, len(samples), submitted - start):
            queue.get_idle_request_id()  # wait for a free request first: queueing is not the request's latency
            queue.start_async({0: tensor}, clock())
            submitted = clock()
        queue.wait_all()
    wall_ns = clock() - start
    return _result(list(samples), wall_ns, len(pixels), plan)


def _result(samples: list[int], wall_ns: int, batch: int, plan: TimingPlan) -> LoadResult:
    timing = summarize(samples, plan)
    wall = wall_ns / 1e9
    return LoadResult(timing, len(samples) * batch / wall if wall else 0.0, wall)
