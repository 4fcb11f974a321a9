"""Artifact backends through the device runtime: ONNX Runtime (CPU, CUDA and TensorRT providers),
OpenVINO (CPU, GPU) and TensorRT engines, each opened with ``edgefer.runtime.open_backend``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import BenchBackend
from edgefer.bench.plan import ArtifactInfo
from edgefer.bench.records import GpuSplit
from edgefer.bench.runners import BenchRunner, median_split
from edgefer.errors import ModelError
from edgefer.runtime.loader import open_backend


class ArtifactRunner(BenchRunner):
    def __init__(self, backend: BenchBackend, artifact: ArtifactInfo, threads: int, allow_fallback: bool = False,
                 mode: str = "latency"):
        start = time.perf_counter()
        self.backend = _open(backend, artifact, threads, allow_fallback, mode)
        load_seconds = time.perf_counter() - start
        super().__init__(precision=self.backend.precision, device=self.backend.device,
                         input_shape=self.backend.spec.input_shape, load_seconds=load_seconds)
        providers = getattr(self.backend, "providers", None)
        if providers:
            self.extra["providers"] = ",".join(providers)
        if getattr(self.backend, "fallback", ""):
            self.extra["fallback"] = self.backend.fallback

    def bind(self, pixels: np.ndarray) -> Callable[[], object]:
        return functools.partial(self.backend.run, pixels)

    def infer(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.backend.run(pixels), dtype=np.float32)

    def gpu_split(self, pixels: np.ndarray, repeats: int) -> GpuSplit | None:
        run_timed = getattr(self.backend, "run_timed", None)  # TensorRT: GPU events around each step
        if run_timed is None:
            return None
        return median_split([run_timed(pixels)[1:] for _ in range(repeats)])

    def under_load(self, pixels: np.ndarray, in_flight: int, plan):
        """OpenVINO: an AsyncInferQueue of infer requests; ONNX Runtime and TensorRT: concurrent callers."""
        compiled = getattr(self.backend, "compiled", None)
        if compiled is not None and self.backend.name == "openvino":
            from edgefer.bench.load import openvino_async

            return openvino_async(compiled, pixels, in_flight, plan)
        return super().under_load(pixels, in_flight, plan)

    def close(self) -> None:
        self.backend.close()


def _open(backend: BenchBackend, artifact: ArtifactInfo, threads: int, allow_fallback: bool, mode: str):
    """ONNX Runtime refuses (BackendUnavailable) a GPU provider that is missing or silently dropped for CPU,
    unless ``allow_fallback``: then it runs on CPU and its device says so. OpenVINO compiles with the
    performance hint of the mode (LATENCY, or THROUGHPUT: several streams)."""
    options: dict[str, object] = {}
    if backend.runtime == "onnxruntime":
        options["allow_fallback"] = allow_fallback
    if backend.runtime == "openvino":
        options["performance"] = mode
    return open_backend(artifact.path, backend.runtime, threads=threads, device=backend.device, **options)


def prepare(backend: BenchBackend, model: str, precision: str, threads: int,
            artifact: ArtifactInfo | None, allow_fallback: bool = False, mode: str = "latency") -> BenchRunner:
    if artifact is None or artifact.status != "written":
        raise ModelError(f"no {backend.format} {precision} artifact of {model}")
    return ArtifactRunner(backend, artifact, threads, allow_fallback, mode)
