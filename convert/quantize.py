"""INT8: one calibrated ONNX with QuantizeLinear/DequantizeLinear nodes for every runtime.

ONNX Runtime's static quantization in QDQ format, symmetric int8 activations and per-channel
symmetric int8 weights: the form TensorRT requires for explicit quantization, and one that
ONNX Runtime and OpenVINO run as well.
"""

from __future__ import annotations

import logging
import os
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
    quiet = logging.root.manager.disable
    logging.disable(logging.WARNING)  # ORT's "consider pre-processing" hint, on the root logger
    try:
        with atomic_path(out) as tmp:
            quantize_static(
                str(onnx_fp32), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=METHODS[method],
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    finally:
        logging.disable(quiet)
    return Path(out)
