"""INT8: one calibrated ONNX with QuantizeLinear/DequantizeLinear nodes for every runtime.

ONNX Runtime's static quantization in QDQ format, symmetric int8 activations and per-channel
symmetric int8 weights: the form TensorRT requires for explicit quantization, and one that
ONNX Runtime and OpenVINO run as well.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from edgefer.fileio import atomic_path

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}


class CropReader(CalibrationDataReader):
    """Feeds calibration crops to ONNX Runtime's calibrator in small batches."""

    def __init__(self, input_name: str, crops: np.ndarray, batch: int = 16):
        self._batches = iter([{input_name: crops[i:i + batch]} for i in range(0, len(crops), batch)])

    def get_next(self):
        return next(self._batches, None)

    def rewind(self) -> None:  # the MinMax calibrator reads once; nothing to rewind to
        return None


def quantize_int8(onnx_fp32: str | os.PathLike, out: str | os.PathLike, crops: np.ndarray,
                  input_name: str, method: str = "minmax") -> Path:
    """Write a Q/DQ int8 copy of ``onnx_fp32`` calibrated on ``crops`` (N, 1, H, W) float32."""
    reader = CropReader(input_name, crops)
    with quantization_warnings_dropped(), atomic_path(out) as tmp:
        quantize_static(
            str(onnx_fp32), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=METHODS[method],
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return Path(out)


@contextlib.contextmanager
def quantization_warnings_dropped() -> Iterator[None]:
    """Drop the warnings ONNX Runtime's quantization code logs from this thread (its "consider
    pre-processing" hint); it logs them on the root logger, so a filter there picks them out by source
    file and thread, and every other thread's and library's warnings still get through."""
    thread, source = threading.get_ident(), os.path.join("onnxruntime", "quantization", "")

    def keep(record: logging.LogRecord) -> bool:
        return not (record.thread == thread and record.levelno <= logging.WARNING and source in record.pathname)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
