"""PyTorch eager on the CPU: the model as ``edgefer convert`` starts from it, threads set explicitly.

Loaded as the torch backend (edgefer.convert.torch_backend), which also computes the logits for
parity; the timed call is the module itself on a tensor made beforehand. bf16 is PyTorch's bf16
autocast (float32 weights; convolutions and matrix products in bf16). On a CPU without bf16
instructions PyTorch emulates it, and the runner reports "bf16-emulated".
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import BenchBackend
from edgefer.bench.plan import ArtifactInfo
from edgefer.bench.runners import BenchRunner


class TorchCpuRunner(BenchRunner):
    def __init__(self, model: str, precision: str, threads: int):
        import torch

        from edgefer.convert.sources import load_source
        from edgefer.convert.torch_backend import AUTOCAST, DTYPES, TorchBackend

        start = time.perf_counter()
        source = load_source(model)
        self.backend = TorchBackend(source.model, spec=source.spec, threads=threads, precision=precision)
        self.dtype = DTYPES[precision]
        self.model = self.backend.model
        super().__init__(precision=_runs_as(precision), device="cpu", input_shape=source.spec.input_shape,
                         load_seconds=time.perf_counter() - start)
        self.extra["torch_threads"] = str(torch.get_num_threads())
        # Held for the runner's life (the harness times in this thread): no autograd bookkeeping in the
        # timed calls, and bf16 autocast without entering it per call.
        self._autocast = AUTOCAST.get(precision)
        self._modes = self.thread_modes()
        self._modes.__enter__()

    def thread_modes(self) -> contextlib.ExitStack:
        """Inference mode, and bf16 autocast for bf16: both per thread in PyTorch, so every timing thread
        enters them too (a thread started inside them runs without either)."""
        import torch

        modes = contextlib.ExitStack()
        modes.enter_context(torch.inference_mode())
        if self._autocast:
            modes.enter_context(torch.autocast("cpu", dtype=self._autocast))
        return modes

    def bind(self, pixels: np.ndarray) -> Callable[[], object]:
        import torch

        return functools.partial(self.model, torch.from_numpy(pixels).to(self.dtype))

    def infer(self, pixels: np.ndarray) -> np.ndarray:
        return self.backend.run(np.ascontiguousarray(pixels, dtype=np.float32))

    def close(self) -> None:
        self._modes.close()
        self.backend.close()


def _runs_as(precision: str) -> str:
    from edgefer.sysinfo import cpu_has_bf16

    return "bf16-emulated" if precision == "bf16" and not cpu_has_bf16() else precision


def prepare(backend: BenchBackend, model: str, precision: str, threads: int,
            artifact: ArtifactInfo | None) -> BenchRunner:
    return TorchCpuRunner(model, precision, threads)
