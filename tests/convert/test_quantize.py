"""INT8 quantization drops ONNX Runtime's own warnings and nothing else: another thread's warnings and this
thread's other warnings still reach the log."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

pytest.importorskip("onnxruntime.quantization")

from onnxruntime.quantization import QuantFormat, quantize_static  # noqa: E402

from edgefer.convert.quantize import CropReader, quantization_warnings_dropped, quantize_int8  # noqa: E402
from edgefer.runtime import open_backend  # noqa: E402
from edgefer.zoo import PRETRAINED  # noqa: E402

HINT = "pre-processing"  # ORT: "Please consider to run pre-processing before quantization..."


def test_quantization_drops_only_its_own_warnings(tmp_path, caplog):
    model = PRETRAINED["microexpnet-ck"].onnx
    input_name = open_backend(model).spec.input_name
    crops = np.random.default_rng(0).integers(0, 256, (8, 1, 84, 84)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        quantize_static(str(model), str(tmp_path / "plain.onnx"), CropReader(input_name, crops),
                        quant_format=QuantFormat.QDQ)
    assert any(HINT in r.getMessage() for r in caplog.records)  # ORT does warn without the filter
    caplog.clear()

    with caplog.at_level(logging.WARNING):
        with quantization_warnings_dropped():
            other = threading.Thread(target=logging.warning, args=("another thread's warning",))
            other.start()
            other.join()
            logging.warning("this thread's own warning")
        quantize_int8(model, tmp_path / "int8.onnx", crops, input_name)
    messages = [r.getMessage() for r in caplog.records]
    assert "another thread's warning" in messages and "this thread's own warning" in messages
    assert not any(HINT in m for m in messages)
    assert (tmp_path / "int8.onnx").stat().st_size > 0 and logging.getLogger().filters == []
