"""Which backend opens which artifact. Backends are imported only when one is asked for."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from edgefer.errors import BackendUnavailable, InputError, ModelError
from edgefer.limits import check_threads
from edgefer.runtime.base import Backend
from edgefer.spec import ModelSpec

#: backend name -> "module:class". PyTorch lives with the torch-side code; naming it here imports nothing.
BACKENDS: dict[str, str] = {
    "torch": "edgefer.convert.torch_backend:TorchBackend",
    "onnxruntime": "edgefer.runtime.onnxruntime_backend:OnnxRuntimeBackend",
    "openvino": "edgefer.runtime.openvino_backend:OpenVinoBackend",
    "tensorrt": "edgefer.runtime.tensorrt_backend:TensorRtBackend",
}

#: artifact suffix -> backend that runs it by default
SUFFIXES: dict[str, str] = {
    ".onnx": "onnxruntime",
    ".xml": "openvino",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".safetensors": "torch",
}

#: backend -> the artifact suffixes it reads, and the `edgefer convert --to` target that makes one
READS: dict[str, tuple[tuple[str, ...], str]] = {
    "torch": ((".safetensors",), ""),
    "onnxruntime": ((".onnx",), "onnx"),
    "openvino": ((".xml", ".onnx"), "openvino"),
    "tensorrt": ((".engine", ".plan"), "tensorrt"),
}


def backend_for(path: Path) -> str:
    """The default backend for an artifact, by its file type."""
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise ModelError(f"{path}: unknown model file type {path.suffix!r}, expected one of "
                         f"{', '.join(SUFFIXES)}") from None


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}, expected one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise BackendUnavailable(f"backend {name!r} is not available in this edgefer ({err})") from None
    return getattr(module, class_name)


#: Backends that can be asked for a compute precision at load (``precision=``); the others run their
#: artifact's precision, and a request for another one is refused.
SETS_PRECISION = {"openvino", "torch"}


def open_backend(path: str | os.PathLike, backend: str | None = None, *, threads: int | None = None,
                 device: str | None = None, spec: ModelSpec | None = None, precision: str | None = None,
                 **options: object) -> Backend:
    """Load an artifact on the named backend (default: by file type); ``options`` are that backend's own
    (e.g. ONNX Runtime's ``allow_fallback``). ``precision`` asks for a compute precision (fp32, fp16, bf16,
    int8): BackendUnavailable when the backend or hardware cannot run the artifact in it; an emulated run
    is allowed only as what it is (ONNX Runtime's "int8-emulated")."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"model file must be a path, got {type(path).__name__}")
    path = Path(path)
    check_threads(threads)
    name = backend or backend_for(path)
    check_readable(path, name)
    kwargs: dict[str, object] = {"threads": threads, "spec": spec, **options}
    if device:
        kwargs["device"] = device
    if precision is not None:
        _check_precision_name(precision)
        if name in SETS_PRECISION:
            kwargs["precision"] = precision
    loaded = backend_class(name)(path, **kwargs)
    if precision is not None and name not in SETS_PRECISION and loaded.precision.split("-")[0] != precision:
        loaded.close()
        hint = " (bf16 runs on the openvino backend, which also reads .onnx)" if precision == "bf16" else ""
        raise BackendUnavailable(f"{path}: {name} runs this model in {loaded.precision} and cannot be asked for "
                                 f"{precision}{hint}")
    return loaded


def _check_precision_name(precision: str) -> None:
    from edgefer.spec import PRECISIONS

    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}, expected one of {', '.join(PRECISIONS)}")


def check_readable(path: Path, backend: str) -> None:
    """Refuse a file the backend cannot read, naming the `edgefer convert` that makes one it can."""
    if backend not in READS:
        backend_class(backend)  # raises for an unknown backend; one registered later checks its own files
        return
    suffixes, target = READS[backend]
    if path.suffix.lower() not in suffixes and not target:
        raise ModelError(f"{path}: {backend} reads {' or '.join(suffixes)} weights (written by edgefer train; "
                         f"the bundled models ship them), not {path.suffix or 'this file'}")
    if path.suffix.lower() not in suffixes:
        raise ModelError(f"{path}: {backend} reads {' or '.join(suffixes)} files, not {path.suffix or 'this file'}; "
                         f"make one with: edgefer convert MODEL --to {target} --out DIR "
                         "(MODEL: a bundled name, family name or .safetensors)")
