"""The GPU runners of `edgefer bench`: PyTorch on CUDA (eager and CUDA graph) and ONNX Runtime's CUDA and
TensorRT providers against the CPU, fp32 kept IEEE fp32 (no TF32), and a GPU timing split checked against
the call it splits. The `gpu` tests run where a CUDA GPU is visible (tools/gpu_check.sh); the rest run here."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgefer.bench.catalog import BY_NAME  # noqa: E402
from edgefer.bench.runner_torch_cuda import TorchCudaRunner, set_fp32_math  # noqa: E402
from edgefer.errors import BackendUnavailable  # noqa: E402

MODEL = "microexpnet-ck"


def crops(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, 1, 84, 84)).astype(np.float32)


NEW_FP32_API = hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision")  # PyTorch 2.9+


@pytest.fixture
def restore_fp32_math():
    if NEW_FP32_API:
        conv = torch.backends.cudnn.conv
        saved = (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
        yield
        conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = saved
    else:
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        yield
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_fp32_cells_turn_tf32_off(restore_fp32_math):
    """PyTorch's cuDNN convolutions default to TF32; an fp32 cell sets IEEE fp32 (flags exist on CPU builds),
    through the fp32_precision API where this PyTorch has it, else the allow_tf32 flags."""
    if NEW_FP32_API:
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    else:
        torch.backends.cudnn.allow_tf32 = True
    assert set_fp32_math(torch, "fp16") == "tf32"  # other precisions leave the default alone
    assert set_fp32_math(torch, "fp32") == "ieee"
    if NEW_FP32_API:
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    else:
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch sees a CUDA GPU")
def test_torch_cuda_without_a_gpu_is_unavailable():
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        TorchCudaRunner(BY_NAME["torch-cuda"], MODEL, "fp32", threads=1)


# ---------------------------------------------------------------- gpu


def cpu_logits(pixels: np.ndarray) -> np.ndarray:
    from edgefer.convert.sources import load_source

    model = load_source(MODEL).model.eval()
    with torch.inference_mode():
        return model(torch.from_numpy(pixels)).numpy()


def wall_ms(call, repeats: int) -> float:
    """Median wall milliseconds of a synchronous call (it returns only when the GPU is done)."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def check_split_against_the_call(runner, pixels: np.ndarray) -> None:
    """The GPU events split one call into copy in, compute and copy out: their sum cannot exceed the
    call's own wall time (the call waits for all three), and at batch 256 it must be most of it."""
    split = runner.gpu_split(pixels, repeats=20)
    total = wall_ms(runner.bind(pixels), repeats=20)
    steps = (split.h2d_ms, split.compute_ms, split.d2h_ms)
    assert min(steps) > 0, steps
    assert sum(steps) <= 1.10 * total + 0.05, (steps, total)
    assert sum(steps) >= 0.25 * total, (steps, total)  # the events cover the work, not a sliver of it
    assert split.h2d_ms + split.compute_ms <= total + 0.05


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch-cuda", "torch-cuda-graph"])
def test_torch_cuda_runner_matches_cpu_in_ieee_fp32(backend, restore_fp32_math):
    runner = TorchCudaRunner(BY_NAME[backend], MODEL, "fp32", threads=1)
    try:
        assert runner.extra["fp32_math"] == "ieee" and runner.extra["cuda_mode"] == BY_NAME[backend].mode
        pixels = crops(17, seed=3)
        np.testing.assert_allclose(runner.infer(pixels), cpu_logits(pixels), rtol=0, atol=1e-4)
        call = runner.bind(pixels)  # in graph mode: the captured graph, replayed
        for _ in range(2):
            np.testing.assert_allclose(call().numpy(), cpu_logits(pixels), rtol=0, atol=1e-4)
        check_split_against_the_call(runner, crops(256, seed=4))
    finally:
        runner.close()


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_onnxruntime_gpu_providers_match_cpu(device):
    ort = pytest.importorskip("onnxruntime")
    provider = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}[device]
    if provider not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime {ort.__version__} has no {provider} "
                    f"(it has {', '.join(ort.get_available_providers())})")
    from edgefer.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from edgefer.zoo import PRETRAINED

    path = PRETRAINED[MODEL].onnx
    try:
        backend = OnnxRuntimeBackend(path, device=device)
    except BackendUnavailable as err:  # e.g. the provider's CUDA or TensorRT libraries do not load
        pytest.skip(str(err))
    assert backend.device == device and backend.providers[0] == provider
    assert backend.precision == "fp32"
    pixels = crops(8, seed=5)
    expected = OnnxRuntimeBackend(path, threads=1).run(pixels)
    np.testing.assert_allclose(backend.run(pixels), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_torch_cpu_throughput_threads_run_in_the_runners_modes(precision):
    """Inference mode and autocast are per thread in PyTorch: the throughput mode's timing threads must enter
    them too, or a bf16 cell would time float32 with autograd bookkeeping."""
    from edgefer.bench.plan import TimingPlan
    from edgefer.bench.runner_torch_cpu import TorchCpuRunner

    runner = TorchCpuRunner("microexpnet-ck", precision, threads=1)
    seen: list[tuple[bool, bool]] = []
    timed = runner.bind  # what each request would run, recording the modes its thread is in
    runner.bind = lambda pixels: lambda: (seen.append((torch.is_inference_mode_enabled(),
                                                       torch.is_autocast_cpu_enabled())), timed(pixels)())
    try:
        assert torch.is_inference_mode_enabled()  # the runner's own thread, for latency mode
        runner.under_load(np.zeros((2, 1, 84, 84), np.float32), 2,
                          TimingPlan(warmup_iters=1, warmup_seconds=0.0, min_iters=4, min_seconds=0.0, max_seconds=1.0))
    finally:
        runner.close()
    assert seen and set(seen) == {(True, precision == "bf16")}
    assert not torch.is_inference_mode_enabled()  # closing the runner left this thread as it was
