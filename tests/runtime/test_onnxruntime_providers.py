"""ONNX Runtime's GPU providers as edgefer asks for them and labels them (provable without a GPU: the
provider list, the device a session's kept providers mean, the int8 label, and which error a failure is)."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from edgefer.errors import BackendUnavailable, ModelError
from edgefer.runtime.onnxruntime_backend import (
    PROVIDERS,
    OnnxRuntimeBackend,
    _session,
    device_of,
    provider_list,
    runtime_precision,
)
from edgefer.zoo import PRETRAINED


def test_cuda_provider_runs_with_tf32_off():
    for device in ("cuda", "tensorrt"):
        providers = provider_list(device)
        assert ("CUDAExecutionProvider", {"use_tf32": "0"}) in providers
        assert [p if isinstance(p, str) else p[0] for p in providers] == PROVIDERS[device]
    assert provider_list("cpu") == ["CPUExecutionProvider"]


@pytest.mark.parametrize(("active", "device"), [
    (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], "tensorrt"),
    (["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"),  # a TensorRT session that kept only CUDA
    (["CPUExecutionProvider"], "cpu"),
    ([], "cpu"),
])
def test_device_comes_from_the_first_kept_provider(active, device):
    assert device_of(active) == device


def test_int8_on_the_cuda_provider_is_labelled_emulated():
    assert runtime_precision("int8", "cuda", emulated_on_cpu=False) == "int8-emulated"
    assert runtime_precision("int8", "tensorrt", emulated_on_cpu=False) == "int8"
    assert runtime_precision("int8", "cpu", emulated_on_cpu=True) == "int8-emulated"
    assert runtime_precision("int8", "cpu", emulated_on_cpu=False) == "int8"
    assert runtime_precision("fp32", "cuda", emulated_on_cpu=False) == "fp32"


def test_a_broken_model_asked_for_on_a_gpu_provider_is_still_a_model_error(tmp_path):
    broken = tmp_path / "broken.onnx"
    data = PRETRAINED["microexpnet-ck"].onnx.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a loadable ONNX model") as err:
        _session(ort, broken, ort.SessionOptions(), provider_list("cuda"))
    assert not isinstance(err.value, BackendUnavailable)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this onnxruntime has CUDA")
def test_cuda_without_the_provider_is_unavailable_or_a_labelled_fallback():
    path = PRETRAINED["microexpnet-ck"].onnx
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
        OnnxRuntimeBackend(path, device="cuda")
    backend = OnnxRuntimeBackend(path, device="tensorrt", allow_fallback=True, threads=1)
    assert backend.device == "cpu" and "TensorrtExecutionProvider" in backend.fallback


def test_fp32_on_the_tensorrt_provider_is_tf32_unless_the_override_is_off(monkeypatch):
    """ONNX Runtime's TensorRT provider has no TF32 switch: only NVIDIA_TF32_OVERRIDE=0 makes fp32 fp32."""
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    assert runtime_precision("fp32", "tensorrt", emulated_on_cpu=False) == "tf32"
    assert runtime_precision("fp16", "tensorrt", emulated_on_cpu=False) == "fp16"
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    assert runtime_precision("fp32", "tensorrt", emulated_on_cpu=False) == "fp32"


def test_bench_workers_run_with_tf32_off():
    """Every bench worker process starts with NVIDIA_TF32_OVERRIDE=0, so its fp32 cells are fp32 on any GPU."""
    from edgefer.bench.supervisor import worker_env

    assert worker_env()["NVIDIA_TF32_OVERRIDE"] == "0"
