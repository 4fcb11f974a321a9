"""PyTorch eager on the CPU: the model as ``edgefer convert`` starts from it, threads set explicitly."""

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
        self.dtype = getattr(torch, DTYPES[precision])
        self.model = source.model.eval().to(self.dtype)
        super().__init__(precision=precision, device="cpu", input_shape=source.spec.input_shape,
                         load_seconds=time.perf_counter() - start)
        self.extra["torch_threads"] = str(torch.get_num_threads())
        self._mode = torch.inference_mode()
        self._mode.__enter__()  # held for the runner's life: no autograd bookkeeping in the timed calls

    def bind(self, pixels: np.ndarray) -> Callable[[], object]:
        import torch

        return functools.partial(self.model, torch.from_numpy(pixels).to(self.dtype))

    def infer(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        return self.model(torch.from_numpy(pixels).to(self.dtype)).float().numpy()

    def close(self) -> None:
        self._mode.__exit__(None, None, None)


def prepare(backend: BenchBackend, model: str, precision: str, threads: int,
            artifact: ArtifactInfo | None) -> BenchRunner:
    return TorchCpuRunner(model, precision, threads)
