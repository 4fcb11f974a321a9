"""PyTorch eager on the CPU: the model as ``edgefer convert`` starts from it, threads set explicitly.

bf16 is PyTorch's bf16 autocast (float32 weights; convolutions and matrix products in bf16). On a CPU
without bf16 instructions PyTorch emulates it, and the runner reports "bf16-emulated".
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import BenchBackend
from edgefer.bench.plan import ArtifactInfo
from edgefer.bench.runners import BenchRunner

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchCpuRunner(BenchRunner):
    def __init__(self, model: str, precision: str, threads: int):
        import torch

        from edgefer.convert.sources import load_source

        torch.set_num_threads(threads)
        start = time.perf_counter()
        source = load_source(model)
        autocast = precision == "bf16"
        self.dtype = torch.float32 if autocast else getattr(torch, DTYPES[precision])
        self.model = source.model.eval().to(self.dtype)
        super().__init__(precision=_runs_as(precision), device="cpu", input_shape=source.spec.input_shape,
                         load_seconds=time.perf_counter() - start)
        self.extra["torch_threads"] = str(torch.get_num_threads())
        # Held for the runner's life (the harness times in this thread): no autograd bookkeeping in the
        # timed calls, and bf16 autocast without entering it per call.
        self._modes = [torch.inference_mode()] + ([torch.autocast("cpu", dtype=torch.bfloat16)] if autocast else [])
        for mode in self._modes:
            mode.__enter__()

    def bind(self, pixels: np.ndarray) -> Callable[[], object]:
        import torch

        return functools.partial(self.model, torch.from_numpy(pixels).to(self.dtype))

    def infer(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        return self.model(torch.from_numpy(pixels).to(self.dtype)).float().numpy()

    def close(self) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(None, None, None)


def _runs_as(precision: str) -> str:
    from edgefer.sysinfo import cpu_has_bf16

    return "bf16-emulated" if precision == "bf16" and not cpu_has_bf16() else precision


def prepare(backend: BenchBackend, model: str, precision: str, threads: int,
            artifact: ArtifactInfo | None) -> BenchRunner:
    return TorchCpuRunner(model, precision, threads)
