"""Every backend ``edgefer bench`` knows, and which of them this machine offers (decided once, here).

A bench backend is one runtime on one device: ``onnxruntime`` (CPU execution provider),
``onnxruntime-cuda``, ``openvino`` (CPU), ``openvino-gpu``, ``torch-cuda-graph``... Its answer to
"can it run here?" comes from :func:`edgefer.sysinfo.detect`, never from probing in the runners.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from edgefer.errors import InputError
from edgefer.runtime.loader import BACKENDS as RUNTIME_MODULES
from edgefer.sysinfo import BackendInfo, SystemInfo


@dataclass(frozen=True)
class BenchBackend:
    name: str
    runtime: str  # sysinfo's backend name: torch, onnxruntime, openvino, tensorrt
    runner: str  # the edgefer.bench.runner_* module that prepares it: torch_cpu, torch_cuda, artifact
    device: str  # what the runtime calls the device
    format: str  # the artifact it runs: safetensors (torch), onnx, openvino, tensorrt
    precisions: tuple[str, ...]
    gpu: bool = False
    mode: str = ""  # torch-cuda: "eager" or "graph"
    needs: str = ""  # the device or provider sysinfo must list, when not just the runtime


CATALOG: tuple[BenchBackend, ...] = (
    BenchBackend("torch", "torch", "torch_cpu", "cpu", "safetensors", ("fp32", "bf16")),
    BenchBackend("torch-cuda", "torch", "torch_cuda", "cuda:0", "safetensors", ("fp32", "fp16", "bf16"),
                 gpu=True, mode="eager", needs="cuda"),
    BenchBackend("torch-cuda-graph", "torch", "torch_cuda", "cuda:0", "safetensors", ("fp32", "fp16", "bf16"),
                 gpu=True, mode="graph", needs="cuda"),
    BenchBackend("onnxruntime", "onnxruntime", "artifact", "cpu", "onnx", ("fp32", "fp16", "int8")),
    BenchBackend("onnxruntime-cuda", "onnxruntime", "artifact", "cuda", "onnx", ("fp32", "fp16", "int8"),
                 gpu=True, needs="CUDAExecutionProvider"),
    BenchBackend("onnxruntime-trt", "onnxruntime", "artifact", "tensorrt", "onnx", ("fp32", "fp16", "int8"),
                 gpu=True, needs="TensorrtExecutionProvider"),
    BenchBackend("openvino", "openvino", "artifact", "CPU", "openvino", ("fp32", "fp16", "bf16", "int8"),
                 needs="CPU"),
    BenchBackend("openvino-gpu", "openvino", "artifact", "GPU", "openvino", ("fp32", "fp16", "int8"),
                 gpu=True, needs="GPU"),
    BenchBackend("tensorrt", "tensorrt", "artifact", "cuda:0", "tensorrt", ("fp32", "fp16", "int8"), gpu=True),
)

BY_NAME = {b.name: b for b in CATALOG}
#: What "all" means on a machine without any GPU: the five backends of the paper-shaped table.
PRIMARY = ("torch", "torch-cuda", "onnxruntime", "openvino", "tensorrt")


@dataclass(frozen=True)
class Availability:
    backend: BenchBackend
    available: bool
    reason: str = ""


def check_backend_names(text: str) -> list[str]:
    """``"all"`` or a comma list of known names; refused before anything is detected or started."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--backends is empty: expected 'all' or names from " + ", ".join(BY_NAME))
    unknown = [n for n in names if n not in BY_NAME and names != ["all"]]
    if unknown:
        raise InputError(f"unknown backend {', '.join(unknown)}: expected 'all' or one or more of "
                         f"{', '.join(BY_NAME)}")
    return names


def parse_backends(text: str, system: SystemInfo) -> list[BenchBackend]:
    """``"all"`` or a comma list of names -> backends, in catalogue order."""
    names = check_backend_names(text)
    if names == ["all"]:
        return default_backends(system)
    return [b for b in CATALOG if b.name in names]


def default_backends(system: SystemInfo) -> list[BenchBackend]:
    """The primary five, plus each GPU variant when this machine has a GPU or the variant is available."""
    has_gpu = bool(system.gpus) or any(d.startswith("GPU") for d in _info(system, "openvino").devices)
    return [b for b in CATALOG if b.name in PRIMARY or has_gpu or availability(b, system).available]


def availability(backend: BenchBackend, system: SystemInfo, allow_fallback: bool = False) -> Availability:
    """Whether ``backend`` can run here; with ``allow_fallback`` an ONNX Runtime GPU backend whose provider
    is missing still runs (on CPU, and its records say so)."""
    info = _info(system, backend.runtime)
    if not info.available:
        return Availability(backend, False, f"{backend.runtime} unavailable: {info.reason or 'not installed'}")
    module = RUNTIME_MODULES.get(backend.runtime, "").split(":")[0]
    if module and importlib.util.find_spec(module) is None:
        return Availability(backend, False, f"this edgefer has no {backend.runtime} backend ({module})")
    if allow_fallback and backend.runtime == "onnxruntime":
        return Availability(backend, True)
    if backend.needs == "cuda" and not any(d.startswith("cuda") for d in info.devices):
        return Availability(backend, False, "torch sees no CUDA GPU (CPU-only build or no GPU)")
    if backend.needs and backend.needs != "cuda" and not any(d.split(".")[0] == backend.needs
                                                             for d in info.devices):
        listed = ", ".join(info.devices) or "none"
        return Availability(backend, False, f"{backend.runtime} lists no {backend.needs} here (it has: {listed})")
    return Availability(backend, True)


def unsupported_reason(backend: BenchBackend, precision: str) -> str:
    """Why ``backend`` cannot run ``precision``, or "" when it can. bf16 on a CPU without bf16 instructions:
    OpenVINO is refused (it would run f32); torch runs it emulated, and its records say "bf16-emulated"."""
    from edgefer.sysinfo import bf16_missing_reason, cpu_has_bf16

    if precision == "bf16" and backend.runtime == "openvino" and not backend.gpu and not cpu_has_bf16():
        return f"{bf16_missing_reason()}: OpenVINO would run bf16 in fp32"
    if precision in backend.precisions:
        return ""
    offered = ", ".join(backend.precisions)
    return f"{backend.name} runs {offered} here, not {precision}"


def _info(system: SystemInfo, runtime: str) -> BackendInfo:
    found = [b for b in system.backends if b.name == runtime]
    return found[0] if found else BackendInfo(runtime, False, reason="not probed")
