"""ONNX Runtime backend: .onnx files, CPU by default, CUDA / TensorRT execution providers on request."""

from __future__ import annotations

import os

import numpy as np

from edgefer.errors import BackendUnavailable, ModelError
from edgefer.runtime.base import Backend, check_model_file
from edgefer.spec import METADATA_KEY, ModelSpec

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _ort():
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailable(f"onnxruntime is not installed ({err})") from None
    return onnxruntime


def read_onnx_spec(session) -> ModelSpec | None:
    """The edgefer spec stored in the model's metadata_props, or None when there is none."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return ModelSpec.from_json(text) if text else None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, *, spec: ModelSpec | None = None,
                 threads: int | None = None, device: str = "cpu"):
        path = check_model_file(path, "an ONNX model (.onnx)")
        ort = _ort()
        if device not in PROVIDERS:
            raise BackendUnavailable(f"onnxruntime device {device!r} unknown, expected one of {sorted(PROVIDERS)}")
        wanted = PROVIDERS[device]
        if wanted[0] not in ort.get_available_providers():
            raise BackendUnavailable(f"onnxruntime has no {wanted[0]} here "
                                     f"(available: {', '.join(ort.get_available_providers())})")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
        except Exception as err:  # ORT raises its own exception types for broken files
            raise ModelError(f"{path}: not a loadable ONNX model ({_first_line(err)})") from None
        try:
            spec = spec or read_onnx_spec(self.session)
        except ValueError as err:
            raise ModelError(f"{path}: broken edgefer metadata ({err})") from None
        if spec is None:
            raise ModelError(f"{path}: no edgefer metadata ({METADATA_KEY}) in the ONNX file; "
                             "export it with 'edgefer convert' or pass spec=")
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != spec.input_name:
            raise ModelError(f"{path}: expected one input named {spec.input_name!r}, "
                             f"found {[i.name for i in inputs]}")
        super().__init__(spec, device=device, precision=spec.precision, threads=threads)
        self.path = path
        self._outputs = [spec.output_name]
        self.providers = self.session.get_providers()

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(self._outputs, {self.spec.input_name: pixels})[0]


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]
