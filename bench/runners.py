"""How each bench backend is made ready for a (model, precision, threads) and called for one batch.

Every runner shares one life cycle (Polygraphy's runner, in small): load, bind, time, close. One
module per kind (``runner_artifact``, ``runner_torch_cpu``, ``runner_torch_cuda``); :func:`prepare`
imports only the one a backend needs.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import BenchBackend
from edgefer.bench.plan import ArtifactInfo
from edgefer.bench.records import GpuSplit
from edgefer.errors import InputError


class BenchRunner(abc.ABC):
    """A model loaded on one backend, for one precision and thread count.

    ``load_seconds`` covers reading and compiling the model (never part of latency);
    ``compile_seconds`` is extra preparation done per batch shape (a captured CUDA graph).
    """

    def __init__(self, *, precision: str, device: str, input_shape: tuple[int, ...], load_seconds: float):
        #: The precision the runtime really computes in (what the backend reports).
        self.precision = precision
        self.device = device
        self.input_shape = input_shape
        self.load_seconds = load_seconds
        self.compile_seconds: float | None = None
        self.extra: dict[str, str] = {}

    @abc.abstractmethod
    def bind(self, pixels: np.ndarray) -> Callable[[], object]:
        """A zero-argument call that runs one batch of ``pixels`` end to end; the harness times it as is."""

    @abc.abstractmethod
    def infer(self, pixels: np.ndarray) -> np.ndarray:
        """Float32 logits (N, classes) for float32 pixels (N, *input_shape); for parity and accuracy."""

    def gpu_split(self, pixels: np.ndarray, repeats: int) -> GpuSplit | None:
        """Median host-to-device, compute and device-to-host milliseconds; None on a CPU backend."""
        return None

    def under_load(self, pixels: np.ndarray, in_flight: int, plan):
        """Throughput mode: ``in_flight`` requests at once (default: that many threads calling ``bind``)."""
        from edgefer.bench.load import threaded

        return threaded([self.bind(pixels)] * in_flight, len(pixels), plan, context=self.thread_modes)

    def thread_modes(self) -> contextlib.AbstractContextManager:
        """What each timing thread enters around its calls: the runtime state held per thread that the
        runner set in its own thread (torch's inference mode and autocast); nothing by default."""
        return contextlib.nullcontext()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime's resources."""


#: Why the torch-cuda-graph backend refuses throughput mode: the reason its throughput cells carry.
GRAPH_IN_FLIGHT = ("throughput mode is not offered: a captured CUDA graph replays one fixed set of buffers on one "
                   "stream, so it cannot keep several requests in flight (torch-cuda, eager, can)")


def mode_refusal(backend: BenchBackend, mode: str) -> str:
    """Why ``backend`` cannot be timed in ``mode`` ("latency" or "throughput"), or "" when it can."""
    if mode == "throughput" and backend.mode == "graph":
        return GRAPH_IN_FLIGHT
    return ""


def median_split(samples: list[tuple[float, float, float]]) -> GpuSplit:
    h2d, compute, d2h = np.median(np.asarray(samples, dtype=np.float64), axis=0)
    return GpuSplit(float(h2d), float(compute), float(d2h))


def prepare(backend: BenchBackend, model: str, precision: str, threads: int,
            artifact: ArtifactInfo | None, allow_fallback: bool = False, mode: str = "latency") -> BenchRunner:
    """Load ``model`` (or its artifact) on ``backend``; raises BackendUnavailable or ModelError.

    ``allow_fallback`` lets an ONNX Runtime GPU backend run on CPU (labelled so) instead of refusing;
    ``mode`` "throughput" compiles OpenVINO with its THROUGHPUT hint (streams); a backend that cannot keep
    several requests in flight raises InputError with :func:`mode_refusal`'s reason, before loading anything."""
    refusal = mode_refusal(backend, mode)
    if refusal:
        raise InputError(f"{backend.name}: {refusal}")
    module = importlib.import_module(f"edgefer.bench.runner_{backend.runner}")
    if backend.runner == "artifact":
        return module.prepare(backend, model, precision, threads, artifact, allow_fallback=allow_fallback,
                              mode=mode)
    return module.prepare(backend, model, precision, threads, artifact)
