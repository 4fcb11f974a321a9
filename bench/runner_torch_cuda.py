"""PyTorch on a CUDA GPU, eager or as a replayed CUDA graph; the timed call is host -> GPU -> host.

Each call copies the pinned host batch to a static device buffer, runs the model (eagerly, or by
replaying a graph captured once per batch shape) and copies the logits back, then waits for the
stream: the latency an application sees. CUDA events around the three steps give the split.
Throughput mode (eager only) gives each request in flight its own stream and buffers.
fp32 runs IEEE fp32: PyTorch lets cuDNN convolutions use TF32 by default, which is not fp32.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import BenchBackend
from edgefer.bench.plan import ArtifactInfo
from edgefer.bench.records import GpuSplit
from edgefer.bench.runners import BenchRunner, median_split
from edgefer.errors import BackendUnavailable

GRAPH_WARMUP = 3
#: The dtype the model's weights and activations are cast to per precision (on the GPU, no autocast).
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def set_fp32_math(torch, precision: str) -> str:
    """Make fp32 cells IEEE fp32 on CUDA (cuDNN convolutions default to TF32); returns the float32 math mode
    now in force. Uses the fp32_precision API where this PyTorch has it (2.9+: mixing it with the old
    allow_tf32 flags is an error), else the allow_tf32 flags. Other precisions are left alone."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    new_api = conv is not None and hasattr(conv, "fp32_precision")
    if precision == "fp32":
        if new_api:
            conv.fp32_precision = "ieee"
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        else:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
    if new_api:
        return "ieee" if conv.fp32_precision == "ieee" else "tf32"
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


class _Buffers:
    """Pinned host input and output, static device input, and the device output of the last forward."""

    def __init__(self, torch, pixels: np.ndarray, device, classes: int):
        self.host_in = torch.from_numpy(pixels).pin_memory()
        self.dev_in = torch.empty(self.host_in.shape, dtype=torch.float32, device=device)
        self.host_out = torch.empty((len(pixels), classes), dtype=torch.float32).pin_memory()
        self.dev_out = None


class TorchCudaRunner(BenchRunner):
    def __init__(self, backend: BenchBackend, model: str, precision: str, threads: int):
        import torch

        from edgefer.convert.sources import load_source

        if not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA GPU")
        torch.set_num_threads(threads)
        fp32_math = set_fp32_math(torch, precision)
        start = time.perf_counter()
        self.torch = torch
        self.cuda = torch.device(backend.device)
        source = load_source(model)
        self.dtype = getattr(torch, DTYPES[precision])
        self.model = source.model.eval().to(self.cuda, self.dtype)
        self.classes = len(source.spec.labels)
        self.stream = torch.cuda.Stream(self.cuda)
        self.graph_mode = backend.mode == "graph"
        torch.cuda.synchronize(self.cuda)
        super().__init__(precision=precision, device=f"{backend.device} {torch.cuda.get_device_name(self.cuda)}",
                         input_shape=source.spec.input_shape, load_seconds=time.perf_counter() - start)
        self.extra["cuda_mode"] = backend.mode  # eager or graph ("mode" is the bench's latency/throughput)
        self.extra["fp32_math"] = fp32_math
        self._mode = torch.inference_mode()
        self._mode.__enter__()

    def _forward(self, dev_in):
        return self.model(dev_in.to(self.dtype)).float()

    def bind(self, pixels: np.ndarray) -> Callable[[], object]:
        buffers = _Buffers(self.torch, pixels, self.cuda, self.classes)
        start = time.perf_counter()
        compute = self._capture(buffers) if self.graph_mode else None
        self.compile_seconds = time.perf_counter() - start if self.graph_mode else None
        return self._request(buffers, self.stream, compute)

    def _request(self, buffers: _Buffers, stream, graph) -> Callable[[], object]:
        """One batch host -> GPU -> host on ``stream``: the forward (or ``graph``'s replay), then wait for it."""
        def call():
            with self.torch.cuda.stream(stream):
                buffers.dev_in.copy_(buffers.host_in, non_blocking=True)
                if graph is None:
                    buffers.dev_out = self._forward(buffers.dev_in)
                else:
                    graph.replay()
                buffers.host_out.copy_(buffers.dev_out, non_blocking=True)
            stream.synchronize()
            return buffers.host_out  # the logits this call copied back (pinned; valid until the next call)

        return call

    def under_load(self, pixels: np.ndarray, in_flight: int, plan):
        """Eager only (runners.prepare refuses the graph runner in throughput mode): each request in flight
        has its own CUDA stream and buffers, is timed on its own and waits for its own stream."""
        from edgefer.bench.load import threaded

        torch = self.torch
        calls = [self._request(_Buffers(torch, pixels, self.cuda, self.classes), torch.cuda.Stream(self.cuda), None)
                 for _ in range(in_flight)]
        return threaded(calls, len(pixels), plan, context=self.thread_modes)

    def thread_modes(self):
        """Inference mode, which PyTorch keeps per thread: every timing thread enters it."""
        return self.torch.inference_mode()

    def _capture(self, buffers: _Buffers):
        """Warm up on the side stream, then capture one forward into a CUDA graph (static buffers)."""
        torch = self.torch
        with torch.cuda.stream(self.stream):
            buffers.dev_in.copy_(buffers.host_in)
            for _ in range(GRAPH_WARMUP):
                self._forward(buffers.dev_in)
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            buffers.dev_out = self._forward(buffers.dev_in)
        return graph

    def infer(self, pixels: np.ndarray) -> np.ndarray:
        dev_in = self.torch.from_numpy(pixels).to(self.cuda)
        return self._forward(dev_in).cpu().numpy()

    def gpu_split(self, pixels: np.ndarray, repeats: int) -> GpuSplit:
        torch = self.torch
        buffers = _Buffers(torch, pixels, self.cuda, self.classes)
        graph = self._capture(buffers) if self.graph_mode else None
        samples = []
        for _ in range(repeats):
            events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
            with torch.cuda.stream(self.stream):
                events[0].record()
                buffers.dev_in.copy_(buffers.host_in, non_blocking=True)
                events[1].record()
                if graph is None:
                    buffers.dev_out = self._forward(buffers.dev_in)
                else:
                    graph.replay()
                events[2].record()
                buffers.host_out.copy_(buffers.dev_out, non_blocking=True)
                events[3].record()
            self.stream.synchronize()
            samples.append(tuple(events[i].elapsed_time(events[i + 1]) for i in range(3)))
        return median_split(samples)

    def close(self) -> None:
        self._mode.__exit__(None, None, None)
        self.model = None
        self.torch.cuda.empty_cache()


def prepare(backend: BenchBackend, model: str, precision: str, threads: int,
            artifact: ArtifactInfo | None) -> BenchRunner:
    return TorchCudaRunner(backend, model, precision, threads)
