"""OpenVINO backend: IR files (.xml + .bin) or ONNX files on CPU (or an Intel GPU), inference precision pinned.

The edgefer spec is read from the IR's ``rt_info`` at :data:`RT_INFO_PATH`, or from an ONNX file's
``metadata_props`` (OpenVINO reads ONNX itself but does not keep those). The inference precision
is always asked for explicitly: on CPUs with bf16 (AVX512_BF16 / AMX) OpenVINO otherwise runs
FP32 models in bf16. The precision the compiled model really uses is read back and reported.

bf16 is asked for by a bf16 artifact (``edgefer convert --precision bf16``: float32 weights, spec
precision bf16) or by ``precision="bf16"`` at load. Where the device has no bf16, a bf16 artifact
still loads and runs in f32, reported as fp32 (with a warning); an explicit request is refused
(BackendUnavailable) rather than run in another precision.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path

import numpy as np

from edgefer import trust
from edgefer.artifact import spec_from_text
from edgefer.errors import BackendUnavailable, InputError, ModelError, one_line
from edgefer.nativelog import native_stderr_filtered
from edgefer.runtime.base import Backend, BoundBatches, GraphIO, check_graph, check_model_file
from edgefer.spec import ModelSpec

LOG = logging.getLogger(__name__)

#: Where an IR keeps the edgefer spec (JSON text): ``<rt_info><edgefer><spec value="..."/>``.
RT_INFO_PATH = ["edgefer", "spec"]

#: OpenVINO element type name -> edgefer precision name.
PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}

#: Execution-graph layers that move or hold data rather than compute.
_DATA_LAYERS = {"Input", "Output", "Const", "Reorder", "Reshape", "Transpose"}

PERFORMANCE_HINTS = ("latency", "throughput")


def _ov():
    try:
        with native_stderr_filtered():  # its ARM plugin's "Can't open MIDR_EL1 sysfs entry" under qemu
            import openvino
    except ImportError as err:
        raise BackendUnavailable(f"openvino is not installed ({err}); pip install 'edgefer[openvino]'") from None
    return openvino


@functools.cache
def _core():
    """One OpenVINO Core per process (its methods are thread-safe)."""
    ov = _ov()
    with native_stderr_filtered():
        return ov.Core()


def read_openvino_spec(model) -> ModelSpec | None:
    """The edgefer spec stored in an ``openvino.Model``'s rt_info, or None when there is none."""
    if not model.has_rt_info(RT_INFO_PATH):
        return None
    return ModelSpec.from_json(model.get_rt_info(RT_INFO_PATH).astype(str))


class OpenVinoBackend(BoundBatches, Backend):
    """Batches up to ``BOUND_BATCH_MAX`` reuse a per-thread request whose input and output tensors are set
    once (see ``_bound``); larger ones pass their pixels to a per-thread request as they are."""

    name = "openvino"

    def __init__(self, path: str | os.PathLike, *, spec: ModelSpec | None = None, threads: int | None = None,
                 device: str = "CPU", performance: str = "latency", precision: str | None = None):
        """``precision``: the compute precision to run in ("fp32", "fp16", "bf16"; "int8" for an int8 IR,
        whose float part follows the device default), refused when the device cannot run it; None: the
        artifact's own precision, where the device has it."""
        onnx = Path(path).suffix.lower() == ".onnx"
        path, weights = (check_model_file(path, "an ONNX model (.onnx)"), None) if onnx else check_ir_files(path)
        _ov()
        ov_device = _device(device)
        model = _read_model(path, weights)
        spec = spec or (_onnx_spec(path) if onnx else _spec_of(model, path))
        _check_io(model, spec, path)
        inference = _inference_precision(path, ov_device, spec.precision, precision)
        config = _compile_config(ov_device, inference, threads, performance)
        self.compiled = _compile(model, path, ov_device, config)
        _check_delivered(self.compiled, path, inference, precision)
        super().__init__(spec, device=device.lower(), precision=runtime_precision(self.compiled, spec.precision),
                         threads=threads)
        self.path = path
        self._lock = threading.Lock()
        self._local = threading.local()

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        if 0 < len(pixels) <= self.BOUND_BATCH_MAX:
            return self._run_bound(pixels)
        results = self._request().infer({0: pixels}, share_inputs=True, share_outputs=False)
        return results[0]

    def _bound(self, batch: int) -> tuple:
        """This thread's request for ``batch`` images with its input and output tensors set once, over
        buffers each call copies into and out of (a feed dict costs a third more than the network itself
        at batch 1, the Python wrapper's input dispatch and result dict a few microseconds more)."""
        ov = _ov()
        with self._lock:
            if self.compiled is None:
                self._raise_closed()
            request = self.compiled.create_infer_request()
            out_dtype = self.compiled.output(0).get_element_type().to_dtype()
        pixels = np.empty((batch, *self.spec.input_shape), np.float32)
        logits = np.empty((batch, len(self.spec.labels)), out_dtype)
        request.set_input_tensor(ov.Tensor(pixels, shared_memory=True))
        request.set_output_tensor(ov.Tensor(logits, shared_memory=True))
        # The binding's own infer (what openvino.InferRequest.infer calls after its input dispatch, before
        # wrapping the result dict in an OVDict): no inputs to pass, outputs shared, nothing decoded.
        infer = functools.partial(ov._pyopenvino.InferRequest.infer, request, {}, True, False)
        bound = self._local.__dict__[batch] = (infer, pixels, logits)
        return bound

    def _request(self):
        """This thread's own InferRequest: a request must never run in two threads at once."""
        local = self._local
        request = getattr(local, "request", None)
        if request is None:
            with self._lock:
                if self.compiled is None:
                    self._raise_closed()
                request = local.request = self.compiled.create_infer_request()
        return request

    def _release(self) -> None:
        with self._lock:
            self.compiled = None
            self._local = threading.local()  # drops every thread's request with it

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "path": str(self.path)}


def compile_helper_model(path: Path, threads: int | None):
    """A helper network (e.g. BlazeFace) compiled for this CPU in float32, latency hint: pinned, because a
    bf16 CPU would otherwise run it in bf16 and move its outputs. ModelError naming the file if it fails."""
    _ov()
    return _compile(_read_model(path, None), path, "CPU", _compile_config("CPU", "fp32", threads, "latency"))


def _compile(model, path: Path, device: str, config: dict):
    """``model`` compiled for ``device``; ModelError naming ``path`` when OpenVINO cannot."""
    try:
        with native_stderr_filtered():
            return _core().compile_model(model, device, config)
    except RuntimeError as err:
        raise ModelError(f"{path}: OpenVINO cannot compile it for {device} ({error_reason(err)})") from None


def check_ir_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """The .xml and its .bin, refused with a ModelError naming the file when either is unusable."""
    path = check_model_file(path, "an OpenVINO IR (.xml)")
    with path.open("rb") as handle:
        head = handle.read(64).lstrip()
    if not head.startswith(b"<"):
        raise ModelError(f"{path}: not an OpenVINO IR (.xml): the file is not XML")
    weights = check_model_file(path.with_suffix(".bin"), f"the weights (.bin) of {path.name}")
    return path, trust.check_beside(path, weights, f"weights file {weights.name!r}")


def _device(device: str) -> str:
    """'cpu', 'GPU', 'gpu.1' -> OpenVINO's name, refused when OpenVINO does not see that device."""
    wanted = device.upper()
    available = _core().available_devices
    if not any(d == wanted or d.split(".")[0] == wanted for d in available):
        raise BackendUnavailable(f"OpenVINO device {device!r} not found here (available: {', '.join(available)})")
    return wanted


def _read_model(path: Path, weights: Path | None):
    try:
        if weights is None:
            return _core().read_model(str(path))
        return _core().read_model(str(path), str(weights))
    except RuntimeError as err:
        kind = "ONNX model" if weights is None else "OpenVINO IR"
        raise ModelError(f"{path}: not a loadable {kind} for OpenVINO ({error_reason(err)})") from None


def _onnx_spec(path: Path) -> ModelSpec:
    """The spec in an ONNX file's metadata_props (OpenVINO reads the graph but does not keep them); the file
    was checked by :func:`check_model_file` already."""
    from edgefer.spec import METADATA_KEY
    from edgefer.trust import onnx_metadata

    return spec_from_text(path, onnx_metadata(path).get(METADATA_KEY))


def _spec_of(model, path: Path) -> ModelSpec:
    try:
        spec = read_openvino_spec(model)
    except (ValueError, TypeError) as err:
        raise ModelError(f"{path}: broken edgefer metadata in rt_info ({err})") from None
    if spec is None:
        raise ModelError(f"{path}: no edgefer metadata (rt_info {'/'.join(RT_INFO_PATH)}) in the IR; "
                         "export it with 'edgefer convert' or pass spec=")
    return spec


def _check_io(model, spec: ModelSpec, path: Path) -> None:
    if len(model.outputs) != 1:
        raise ModelError(f"{path}: expected one output, found {len(model.outputs)}")
    check_graph(spec, GraphIO(_ports(model.inputs, spec.input_name), _ports(model.outputs, spec.output_name)), path)


def _ports(ports, wanted: str) -> dict[str, tuple[int | None, ...]]:
    """Port name (``wanted`` when it is one of the port's names) -> dims, None where dynamic."""
    found = {}
    for port in ports:
        names = port.get_names()
        name = wanted if wanted in names else min(names, default=f"<unnamed {port.get_index()}>")
        shape = port.get_partial_shape()
        found[name] = () if shape.rank.is_dynamic else tuple(
            d.get_length() if d.is_static else None for d in shape)
    return found


def _capabilities(device: str) -> list[str]:
    return list(_core().get_property(device, "OPTIMIZATION_CAPABILITIES"))


def _inference_precision(path: Path, device: str, artifact: str, requested: str | None) -> str | None:
    """The float precision to pin (None: OpenVINO's default, for int8 IRs): the request if the device can,
    else the artifact's where the device has it, else fp32."""
    from edgefer.spec import PRECISIONS

    if requested is None:
        if artifact == "int8":
            return None
        native = {"fp16": "FP16", "bf16": "BF16"}.get(artifact)
        if native and native not in _capabilities(device):
            if artifact == "bf16":
                LOG.warning("%s: bf16 model runs in fp32: OpenVINO's %s has no bf16 (%s)", path, device,
                            _bf16_reason(device))
            return "fp32"
        return artifact
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision {requested!r}, expected one of {', '.join(PRECISIONS)}")
    if requested == "int8" or artifact == "int8":
        if requested != artifact:
            raise BackendUnavailable(f"{path}: a {artifact} model cannot run in {requested}; convert it with "
                                     f"'edgefer convert --precision {requested}'")
        return None
    native = {"fp16": "FP16", "bf16": "BF16"}.get(requested)
    if native and native not in _capabilities(device):
        reason = _bf16_reason(device) if requested == "bf16" else f"OpenVINO's {device} has no native fp16"
        raise BackendUnavailable(f"{path}: {requested} asked for, but {reason}")
    return requested


def _bf16_reason(device: str) -> str:
    from edgefer.sysinfo import bf16_missing_reason

    return bf16_missing_reason() if device == "CPU" else f"OpenVINO's {device} has no bf16"


def _check_delivered(compiled, path: Path, inference: str | None, requested: str | None) -> None:
    """An explicit request must be what the compiled model reports, never quietly another precision."""
    if requested is None or inference is None:
        return
    got = _precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if got != inference:
        raise BackendUnavailable(f"{path}: {requested} asked for, but OpenVINO compiled it to run in {got}")


def _compile_config(device: str, precision: str | None, threads: int | None, performance: str) -> dict:
    """Explicit compile properties: performance hint, thread count, and the inference precision (None:
    OpenVINO's default)."""
    import openvino.properties as props
    import openvino.properties.hint as hints

    if performance not in PERFORMANCE_HINTS:
        raise InputError(f"unknown performance hint {performance!r}, expected one of {', '.join(PERFORMANCE_HINTS)}")
    mode = hints.PerformanceMode.LATENCY if performance == "latency" else hints.PerformanceMode.THROUGHPUT
    config: dict = {hints.performance_mode: mode}
    if threads:
        config[props.inference_num_threads] = threads
    if precision is not None:
        types = {"fp32": _ov().Type.f32, "fp16": _ov().Type.f16, "bf16": _ov().Type.bf16}
        config[hints.inference_precision] = types[precision]
    return supported_config(device, config)


def supported_config(device: str, config: dict) -> dict:
    """``config`` without the properties ``device`` does not have: a plugin refuses an unknown one
    ("Option not found"), and e.g. the GPU plugin has no INFERENCE_NUM_THREADS (a CPU setting)."""
    supported = set(_core().get_property(device, "SUPPORTED_PROPERTIES"))
    return {key: value for key, value in config.items() if str(key) in supported}


def runtime_precision(compiled, artifact_precision: str) -> str:
    """What the compiled model computes in: "fp32", "bf16", "fp16", or "int8/<float part>" for int8."""
    floating = _precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if artifact_precision != "int8":
        return floating
    return f"int8/{_executed_float(compiled) or floating}"


def _executed_float(compiled) -> str | None:
    """The float precision the execution graph's compute layers really run in (None if unknown)."""
    try:
        layers = [op.get_rt_info() for op in compiled.get_runtime_model().get_ops()]
        used = {rt["runtimePrecision"].astype(str) for rt in layers
                if rt["layerType"].astype(str) not in _DATA_LAYERS}
    except (RuntimeError, KeyError):  # a plugin without an execution graph
        return None
    for name in ("bf16", "f16", "f32"):
        if name in used:
            return PRECISION_NAMES[name]
    return None


def _precision_name(element_type) -> str:
    name = element_type.get_type_name()
    return PRECISION_NAMES.get(name, name)


def error_reason(err: BaseException) -> str:
    """OpenVINO's messages start with C++ source locations; the reason is on the last line."""
    return one_line(err, last=True)
