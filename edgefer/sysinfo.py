"""What this machine offers: CPU, library versions, inference backends and their devices.

Detected once, here, for `edgefer info` and for the bench's choice of backends, which passes the answer
down. A backend opened on its own still checks what it needs when it opens (ONNX Runtime its execution
provider, OpenVINO the device and its precision, TensorRT the GPU), and ONNX Runtime's int8 choice reads
the CPU flags through :func:`cpu_flags`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import platform
import sys
from dataclasses import asdict, dataclass, field

from edgefer.errors import one_line


@dataclass
class BackendInfo:
    name: str
    available: bool
    version: str | None = None
    devices: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class SystemInfo:
    cpu: str
    cores: int
    platform: str
    python: str
    libraries: dict[str, str | None]
    backends: list[BackendInfo]
    gpus: list[str]
    #: The vector and matrix extensions that decide which precisions pay (see ``cpu_features``).
    cpu_features: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


#: Set by an emulation harness (tools/check_aarch64.sh) to say how this machine is emulated.
EMULATED_ENV = "EDGEFER_EMULATED"
_X86_CPUINFO = ("vendor_id", "flags")  # x86 /proc/cpuinfo keys; an Arm kernel writes "Features", "CPU implementer"


def emulation() -> str:
    """How this machine is emulated ("" when it runs natively): $EDGEFER_EMULATED, or an Arm Python reading an
    x86 /proc/cpuinfo, which is what qemu-user shows (it runs Arm code on the host's CPU)."""
    forced = os.environ.get(EMULATED_ENV, "").strip()
    if forced:
        return forced
    if platform.machine().lower() not in ("aarch64", "arm64", "armv7l", "armv8l"):
        return ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            keys = {line.split(":", 1)[0].strip() for line in handle if ":" in line}
    except OSError:
        return ""
    if keys & set(_X86_CPUINFO):
        return f"qemu-user: {platform.machine()} code on an x86-64 host (/proc/cpuinfo is the host's)"
    return ""


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform.processor())."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo 'flags' or 'Features'); empty where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def library_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _onnxruntime() -> BackendInfo:
    try:
        import onnxruntime as ort
    except Exception as err:  # noqa: BLE001 - any import failure means "not available"
        return BackendInfo("onnxruntime", False, reason=_why(err))
    return BackendInfo("onnxruntime", True, ort.__version__, list(ort.get_available_providers()))


#: CPU flags of native bf16 arithmetic: x86 AVX512_BF16 and AMX-BF16, Arm's BF16 extension (Linux names).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
#: CPU flags of int8 dot products that accumulate in int32 without saturating (VNNI, AMX, Arm's dot product).
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


#: The CPU features a figure depends on, in the order they are reported (Linux flag names).
REPORTED_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                     "amx_int8", "asimd", "asimddp", "bf16", "sve")


def cpu_features() -> list[str]:
    """Which of ``REPORTED_FEATURES`` this CPU has: what makes figures from two CPUs comparable or not."""
    flags = cpu_flags()
    return [name for name in REPORTED_FEATURES if name in flags]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (else a bf16 request is emulated or refused)."""
    return bool(cpu_flags() & BF16_FLAGS)


def bf16_missing_reason() -> str:
    """The one line that says why bf16 cannot run natively here."""
    return (f"this CPU ({cpu_name()}) has no bf16 instructions (AVX512_BF16 or AMX-BF16 on x86, BF16 on Arm)")


def _openvino() -> BackendInfo:
    try:
        import openvino as ov

        devices = list(ov.Core().available_devices)
    except Exception as err:  # noqa: BLE001
        return BackendInfo("openvino", False, reason=_why(err))
    return BackendInfo("openvino", True, ov.get_version(), devices)


def _tensorrt() -> BackendInfo:
    try:
        import tensorrt as trt
    except Exception as err:  # noqa: BLE001
        return BackendInfo("tensorrt", False, reason=_why(err))
    try:  # edgefer's TensorRT backend moves buffers with pycuda: TensorRT alone cannot run an engine
        import pycuda.driver  # noqa: F401 - importing creates no CUDA context
    except Exception as err:  # noqa: BLE001
        return BackendInfo("tensorrt", False, trt.__version__,
                           reason=f"pycuda does not load ({_why(err)}); pip install 'edgefer[tensorrt]'")
    gpus = cuda_gpus()
    if not gpus:
        return BackendInfo("tensorrt", False, trt.__version__, reason="no CUDA GPU found")
    return BackendInfo("tensorrt", True, trt.__version__, gpus)


def _torch() -> BackendInfo:
    try:
        import torch
    except Exception as err:  # noqa: BLE001
        return BackendInfo("torch", False, reason=_why(err))
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    return BackendInfo("torch", True, torch.__version__, devices)


def cuda_gpus() -> list[str]:
    """NVIDIA GPUs seen through NVML (nvidia-smi's library), without creating a CUDA context."""
    try:
        import ctypes

        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return []
        count = ctypes.c_uint()
        nvml.nvmlDeviceGetCount_v2(ctypes.byref(count))
        names = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle))
            name = ctypes.create_string_buffer(96)
            nvml.nvmlDeviceGetName(handle, name, 96)
            names.append(name.value.decode())
        nvml.nvmlShutdown()
        return names
    except (OSError, AttributeError):
        return []


def _why(err: BaseException) -> str:
    return one_line(err, typed=True)


def detect(include_torch: bool = True) -> SystemInfo:
    """Everything `edgefer info` prints; torch is probed only when asked (it is slow to import)."""
    backends = [_onnxruntime(), _openvino(), _tensorrt()]
    if include_torch:
        backends.append(_torch())
    libraries = {name: library_version(name) for name in (
        "edgefer", "numpy", "opencv-python-headless", "onnxruntime", "openvino", "tensorrt", "pycuda",
        "torch", "onnx", "safetensors")}
    return SystemInfo(cpu=cpu_name(), cores=os.cpu_count() or 1, platform=platform.platform(),
                      python=sys.version.split()[0], libraries=libraries, backends=backends,
                      gpus=cuda_gpus(), cpu_features=cpu_features())
