"""ONNX -> OpenVINO IR with ``openvino.convert_model`` / ``save_model``: FP32, FP16 weights, or Q/DQ INT8.

The edgefer spec (with the artifact's precision) goes into the IR's ``rt_info`` at
``["edgefer", "spec"]`` (:data:`edgefer.runtime.openvino_backend.RT_INFO_PATH`); the runtime reads
it from there. An IR is two files, so both are written into a temporary folder beside the target
and renamed into place .bin first, .xml last: a reader never finds an .xml without its complete .bin.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from edgefer.errors import InputError, ModelError
from edgefer.fileio import fsync_dir, fsync_file
from edgefer.runtime.base import check_model_file
from edgefer.runtime.openvino_backend import RT_INFO_PATH, error_reason, read_openvino_spec
from edgefer.spec import METADATA_KEY, PRECISIONS, ModelSpec

__all__ = ["PRECISIONS", "RT_INFO_PATH", "export_openvino", "read_openvino_spec", "save_ir", "set_spec"]


#: Constant element types that only a quantized (Q/DQ) ONNX leaves in the converted model.
_QUANTIZED_TYPES = {"i8", "u8", "i4", "u4"}


def export_openvino(onnx_path: str | os.PathLike, out_xml: str | os.PathLike, spec: ModelSpec,
                    precision: str = "fp32") -> Path:
    """Convert an edgefer ONNX to an IR at ``out_xml`` (+ ``.bin``) carrying ``spec`` at ``precision``.

    ``fp16`` compresses the weights to FP16; ``bf16`` keeps float32 weights and says bf16 in the spec, so
    the runtime asks OpenVINO to compute in bf16 (``INFERENCE_PRECISION_HINT``); ``int8`` expects an ONNX
    that already holds QuantizeLinear/DequantizeLinear nodes (OpenVINO turns them into FakeQuantize).
    """
    import openvino as ov

    if precision not in PRECISIONS:
        raise InputError(f"unknown OpenVINO precision {precision!r}, expected one of {', '.join(PRECISIONS)}")
    out_xml = Path(out_xml)
    if out_xml.suffix != ".xml":
        raise InputError(f"{out_xml}: an OpenVINO IR is written as a .xml file (with its .bin beside it)")
    onnx_path = check_model_file(onnx_path, "an ONNX model (.onnx)")
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as err:  # noqa: BLE001 - the frontends raise their own exception types
        raise ModelError(f"{onnx_path}: OpenVINO cannot convert it ({error_reason(err)})") from None
    _check_quantization(model, precision, onnx_path)
    set_spec(model, replace(spec, precision=precision))
    return save_ir(model, out_xml, compress_to_fp16=precision == "fp16")


def set_spec(model, spec: ModelSpec) -> None:
    """Store ``spec`` in rt_info and drop the copy convert_model took from the ONNX metadata_props.

    That copy describes the source ONNX (e.g. precision fp32 in an FP16 IR); one spec per artifact.
    """
    model.set_rt_info(spec.to_json(), RT_INFO_PATH)
    rt_info = model.get_rt_info()
    if "framework" in rt_info:
        framework = model.get_rt_info(["framework"]).value
        del rt_info["framework"]
        for key, value in framework.items():
            if key != METADATA_KEY:
                model.set_rt_info(value, ["framework", key])


def _check_quantization(model, precision: str, onnx_path: Path) -> None:
    """Refuse an "int8" IR without quantization nodes, and a float one with them."""
    quantized = any(_is_quantization(op) for op in model.get_ops())
    if precision == "int8" and not quantized:
        raise ModelError(f"{onnx_path}: no QuantizeLinear/DequantizeLinear nodes; quantize it before "
                         "exporting an int8 IR")
    if precision != "int8" and quantized:
        raise ModelError(f"{onnx_path}: holds quantization nodes; export it as int8, not {precision}")


def _is_quantization(op) -> bool:
    kind = op.get_type_name()
    if kind == "FakeQuantize":
        return True
    return kind == "Constant" and op.get_output_element_type(0).get_type_name() in _QUANTIZED_TYPES


def save_ir(model, out_xml: str | os.PathLike, *, compress_to_fp16: bool = False) -> Path:
    """Write ``model`` as ``out_xml`` + ``.bin`` atomically; nothing is left behind on failure.

    The old .xml is removed before the new .bin lands, so an old .xml never meets a new .bin.
    """
    import openvino as ov

    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_xml.name}.", suffix=".tmp", dir=out_xml.parent))
    try:
        staged_xml = staging / out_xml.name
        ov.save_model(model, str(staged_xml), compress_to_fp16=compress_to_fp16)
        staged_bin = staged_xml.with_suffix(".bin")
        for part in (staged_bin, staged_xml):
            fsync_file(part)
        out_xml.unlink(missing_ok=True)
        os.replace(staged_bin, out_xml.with_suffix(".bin"))
        os.replace(staged_xml, out_xml)
        fsync_dir(out_xml.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_xml

