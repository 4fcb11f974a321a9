"""ONNX Runtime backend: .onnx files, CPU by default, CUDA / TensorRT execution providers on request.

INT8 (Q/DQ) models on x86 CPUs without VNNI run with the Q/DQ pairs left unfused: ONNX Runtime's
fused u8s8 kernels use VPMADDUBSW there, whose int16 saturation flipped the top-1 of 3 in 4 faces
on an AVX2 EPYC (and were slower than the unfused graph). The precision reported says so.

Small CPU batches run through I/O binding: each thread keeps, per batch size, an input and an output
buffer bound to the session once, so a call is one copy in and ``run_with_iobinding``; ORT allocates
nothing per call. That is cheaper than ``InferenceSession.run`` (which builds the feed, allocates the
output and wraps it) and keeps ``Recognizer.classify`` within a few microseconds of a bare session.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading

import numpy as np

from edgefer.errors import BackendUnavailable, FallbackRefused, ModelError, one_line
from edgefer.nativelog import native_stderr_filtered
from edgefer.runtime.base import Backend, BoundBatches, GraphIO, check_graph, check_model_file
from edgefer.spec import METADATA_KEY, ModelSpec
from edgefer.sysinfo import INT8_DOT_FLAGS, cpu_flags

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
#: The device a session runs on, named by the first provider it kept.
DEVICE_OF_PROVIDER = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda",
                      "CPUExecutionProvider": "cpu"}


def provider_list(device: str) -> list:
    """The providers for ``device``, with options: the CUDA provider runs with TF32 off (``use_tf32`` is on
    by default there; TF32 convolutions round fp32 inputs to 10 mantissa bits, not the fp32 the label says)."""
    providers: list = list(PROVIDERS[device])
    if "CUDAExecutionProvider" in providers:
        index = providers.index("CUDAExecutionProvider")
        providers[index] = ("CUDAExecutionProvider", {"use_tf32": "0"})
    return providers


def device_of(active: list[str]) -> str:
    """The device a session really runs on, from its providers in priority order (a TensorRT session that
    kept only CUDA runs on "cuda", not "cpu")."""
    return DEVICE_OF_PROVIDER.get(active[0], "cpu") if active else "cpu"


def runtime_precision(spec_precision: str, device: str, emulated_on_cpu: bool) -> str:
    """int8 Q/DQ runs as float on the CUDA provider (no int8 kernels there for these ops): say so. fp32 on
    the TensorRT provider is TF32 on Ampere and later unless ``NVIDIA_TF32_OVERRIDE=0`` was set before the
    process loaded CUDA (that provider has no TF32 option; onnxruntime#26029): labelled "tf32" then."""
    if spec_precision == "int8" and (emulated_on_cpu or device == "cuda"):
        return "int8-emulated"
    if spec_precision == "fp32" and device == "tensorrt" and os.environ.get("NVIDIA_TF32_OVERRIDE") != "0":
        return "tf32"
    return spec_precision


def _ort():
    if "onnxruntime" in sys.modules:  # imported: no stderr capture on the per-call paths
        return sys.modules["onnxruntime"]
    try:
        with native_stderr_filtered():  # cpuinfo's noise where /sys is unreadable (qemu, containers)
            import onnxruntime
    except ImportError as err:
        raise BackendUnavailable(f"onnxruntime is not installed ({err})") from None
    return onnxruntime


def session_options(ort, threads: int | None, *, idle_spin: bool = False):
    """edgefer's SessionOptions: ``threads`` intra-op threads (None: ONNX Runtime's default, one per
    physical core), one inter-op thread, warnings off, and worker threads that stop spinning when a run
    returns. ONNX Runtime's default keeps them spinning for the next run: back to back at batch 1 with 2
    threads that saves ~30 us per call (49 against 79 us), but between runs the spinning worker takes a
    core from everything else a frame needs: a 640x480 frame through ``Recognizer(threads=2)`` (BlazeFace,
    MicroExpNet) took 2.7 ms with it and 1.5 ms without, and ``threads=None`` kept 2 cores busy for the
    1 core's work (2-core EPYC, medians over 3-5 processes)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not idle_spin:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


def read_onnx_spec(session) -> ModelSpec | None:
    """The edgefer spec stored in the model's metadata_props, or None when there is none."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return ModelSpec.from_json(text) if text else None


def graph_io(session) -> GraphIO:
    """The session's inputs and outputs with their dims (symbolic ones as None)."""
    def dims(shape) -> tuple[int | None, ...]:
        return tuple(d if isinstance(d, int) and d >= 0 else None for d in shape or ())

    return GraphIO({i.name: dims(i.shape) for i in session.get_inputs()},
                   {o.name: dims(o.shape) for o in session.get_outputs()})


class OnnxRuntimeBackend(BoundBatches, Backend):
    """Batches up to ``BOUND_BATCH_MAX`` run through per-thread preallocated I/O bindings; larger ones through
    ``session.run`` (whose input is used in place, where a copy into a bound buffer would cost more)."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, *, spec: ModelSpec | None = None,
                 threads: int | None = None, device: str = "cpu", allow_fallback: bool = False,
                 idle_spin: bool = False):
        """``allow_fallback``: run on CPU when the ``device``'s provider is missing or fails to load, and
        say so (``device`` "cpu", ``fallback`` the reason); without it that is FallbackRefused.
        ``idle_spin``: keep the worker threads spinning between runs, as ONNX Runtime does by default
        (see :func:`session_options`)."""
        path = check_model_file(path, "an ONNX model (.onnx)")
        ort = _ort()
        if device not in PROVIDERS:
            raise BackendUnavailable(f"onnxruntime device {device!r} unknown, expected one of {sorted(PROVIDERS)}")
        wanted = PROVIDERS[device]
        #: Why this backend runs on CPU although another device was asked for ("" when it does not).
        self.fallback = ""
        if wanted[0] not in ort.get_available_providers():
            self.fallback = (f"onnxruntime {ort.__version__} has no {wanted[0]} here "
                             f"(available: {', '.join(ort.get_available_providers())})")
            if not allow_fallback:
                raise FallbackRefused(self.fallback)
            device, wanted = "cpu", PROVIDERS["cpu"]
        options = session_options(ort, threads, idle_spin=idle_spin)
        self.session = _session(ort, path, options, provider_list(device))
        device = self._check_providers(path, device, wanted, allow_fallback)
        try:
            spec = spec or read_onnx_spec(self.session)
        except ValueError as err:
            raise ModelError(f"{path}: broken edgefer metadata ({err})") from None
        if spec is None:
            raise ModelError(f"{path}: no edgefer metadata ({METADATA_KEY}) in the ONNX file; "
                             "export it with 'edgefer convert' or pass spec=")
        emulate_int8 = device == "cpu" and spec.precision == "int8" and _int8_kernels_saturate()
        if emulate_int8:  # only now is the precision known; int8 models are small, opening again is cheap
            options.add_session_config_entry("session.disable_quant_qdq", "1")
            self.session = _session(ort, path, options, provider_list(device))
        check_graph(spec, graph_io(self.session), path)
        precision = runtime_precision(spec.precision, device, emulate_int8)
        super().__init__(spec, device=device, precision=precision, threads=threads)
        self.path = path
        self._outputs = [spec.output_name]
        self.providers = self.session.get_providers()
        self._classes = len(spec.labels)
        self._bind = device == "cpu" and _plain_logits(self.session, spec.output_name, self._classes)
        self._local = threading.local()

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        session = self.session
        if session is None:  # closed by another thread meanwhile
            self._raise_closed()
        if self._bind and 0 < len(pixels) <= self.BOUND_BATCH_MAX:
            return self._run_bound(pixels)
        return session.run(self._outputs, {self.spec.input_name: pixels})[0]

    def _release(self) -> None:
        self.session = None
        self._local = threading.local()  # drops every thread's bindings with it

    def _bound(self, batch: int) -> tuple:
        """This thread's (run, input buffer, output buffer) for ``batch`` images, made on first use."""
        session = self.session
        if session is None:  # closed by another thread meanwhile
            self._raise_closed()
        ort = _ort()
        pixels = np.empty((batch, *self.spec.input_shape), np.float32)
        logits = np.empty((batch, self._classes), np.float32)
        binding = session.io_binding()
        binding.bind_ortvalue_input(self.spec.input_name, ort.OrtValue.ortvalue_from_numpy(pixels))
        binding.bind_ortvalue_output(self.spec.output_name, ort.OrtValue.ortvalue_from_numpy(logits))
        run = functools.partial(session.run_with_iobinding, binding)
        bound = self._local.__dict__[batch] = (run, pixels, logits)
        return bound

    def _check_providers(self, path, device: str, wanted: list[str], allow_fallback: bool) -> str:
        """The device the session really runs on. ONNX Runtime drops a GPU provider that fails to load
        (missing CUDA libraries) with only a log line and runs on CPU (onnxruntime#23372): ask the
        session which providers it kept, and refuse a GPU run that silently became a CPU one."""
        active = self.session.get_providers()
        if device == "cpu" or (active and active[0] == wanted[0]):
            return device
        really = device_of(active)
        self.fallback = (f"{path}: onnxruntime did not enable {wanted[0]} (session providers: "
                         f"{', '.join(active) or 'none'}); it would silently run on {really.upper()}")
        if not allow_fallback:
            raise FallbackRefused(self.fallback)
        return really


def _plain_logits(session, name: str, classes: int) -> bool:
    """Whether the one output is float32 (N, classes) named ``name``, so a preallocated buffer can be bound
    to it."""
    outputs = session.get_outputs()
    if (len(outputs) != 1 or outputs[0].name != name or outputs[0].type != "tensor(float)"
            or len(outputs[0].shape) != 2):
        return False
    last = outputs[0].shape[1]
    return not isinstance(last, int) or last == classes


def _int8_kernels_saturate() -> bool:
    """True on x86 CPUs whose int8 dot products saturate (AVX2 without VNNI); EDGEFER_ORT_INT8=fused|emulated
    overrides."""
    choice = os.environ.get("EDGEFER_ORT_INT8", "auto")
    if choice in ("fused", "emulated"):
        return choice == "emulated"
    flags = cpu_flags()
    return "avx2" in flags and not flags & INT8_DOT_FLAGS


def _session(ort, path, options, providers: list):
    """An InferenceSession, with ORT's errors for broken or too-new files made one-line edgefer errors.
    When a GPU provider's session fails but the CPU provider loads the same file, the provider failed,
    not the model: BackendUnavailable (exit 5), not ModelError (exit 2)."""
    try:
        with native_stderr_filtered():
            return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # ORT raises its own exception types for broken files
        _raise_if_opset_too_new(path, err, ort.__version__)
        if providers != PROVIDERS["cpu"] and _loads_on_cpu(ort, path, options):
            first = providers[0] if isinstance(providers[0], str) else providers[0][0]
            raise BackendUnavailable(f"{path}: onnxruntime could not create {first} "
                                     f"({one_line(err)})") from None
        raise ModelError(f"{path}: not a loadable ONNX model ({one_line(err)})") from None


def _loads_on_cpu(ort, path, options) -> bool:
    try:
        ort.InferenceSession(str(path), sess_options=options, providers=PROVIDERS["cpu"])
    except Exception:  # noqa: BLE001 - any failure: the model itself is at fault
        return False
    return True


def _raise_if_opset_too_new(path, err: BaseException, version: str) -> None:
    """ORT refuses an opset newer than its release knows with a long message; make it a one-line
    BackendUnavailable naming the model's opset, this onnxruntime and the newest opset it supports."""
    text = " ".join(str(err).split())
    stamped = re.search(r"Opset (\d+) is under development", text)
    supported = re.search(r"support for domain (\S+) is till opset (\d+)", text)
    if stamped and supported:
        domain, newest = supported.group(1), supported.group(2)
        raise BackendUnavailable(
            f"{path}: the model is stamped with {domain} opset {stamped.group(1)}, but onnxruntime {version} "
            f"supports {domain} up to opset {newest}; re-export with an opset <= {newest} "
            "(edgefer convert uses 18) or upgrade onnxruntime") from None
