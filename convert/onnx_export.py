"""PyTorch -> ONNX with torch.onnx.export (the torch.export-based exporter), batch axis dynamic.

The edgefer spec goes into the model's ``metadata_props``; the file is checked with
``onnx.checker`` and written atomically.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from edgefer.fileio import atomic_path
from edgefer.spec import METADATA_KEY, ModelSpec

DEFAULT_OPSET = 18


def export_onnx_proto(model: nn.Module, spec: ModelSpec, *, opset: int = DEFAULT_OPSET,
                      batch: int | None = None):
    """Export ``model`` and return the onnx.ModelProto; batch None makes the batch axis dynamic."""
    model = model.eval()
    example = torch.zeros((batch or 2, *spec.input_shape), dtype=torch.float32)
    dynamic = None if batch else ({0: torch.export.Dim("batch", min=1, max=4096)},)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" noise
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=opset, dynamic_shapes=dynamic,
            input_names=[spec.input_name], output_names=[spec.output_name], optimize=True,
            verbose=False, report=False)
    proto = program.model_proto
    set_metadata(proto, spec)
    proto.producer_name = "edgefer"
    proto.doc_string = f"{spec.model}: facial-expression classifier exported by edgefer {spec.edgefer_version}"
    return proto


def set_metadata(proto, spec: ModelSpec) -> None:
    """Store the spec (and its labels, readable by any ONNX tool) in metadata_props."""
    entries = {METADATA_KEY: spec.to_json(), "labels": ",".join(spec.labels)}
    for prop in list(proto.metadata_props):
        if prop.key in entries:
            proto.metadata_props.remove(prop)
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save_onnx(proto, path: str | os.PathLike) -> Path:
    """Check the model and write it atomically as one self-contained file."""
    import onnx

    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return Path(path)


def onnx_opset(proto) -> int:
    return next(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx"))


def load_and_set_metadata(path: str | os.PathLike, spec: ModelSpec) -> Path:
    """Rewrite the spec stored in an existing ONNX file (e.g. after quantization)."""
    import onnx

    proto = onnx.load_model(str(path))
    set_metadata(proto, spec)
    return save_onnx(proto, path)


def to_fp16(source: str | os.PathLike, target: str | os.PathLike, spec: ModelSpec) -> Path:
    """An FP16 copy (weights and compute) of an FP32 ONNX; input and output stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = convert_float_to_float16(onnx.load_model(str(source)), keep_io_types=True)
    proto = _topologically_sorted(proto)  # the converter appends its input casts after their users
    set_metadata(proto, spec)
    return save_onnx(proto, target)


def _topologically_sorted(proto):
    import onnx_ir

    model = onnx_ir.from_proto(proto)
    model.graph.sort()
    return onnx_ir.to_proto(model)
