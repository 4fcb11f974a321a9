"""Compute precision at load: ``Recognizer(..., precision=...)`` and bf16 IRs, reported as what really runs.

On a CPU with bf16 (AVX512_BF16 / AMX) OpenVINO runs bf16 and says so; on one without, a bf16 IR still
loads and reports fp32, and an explicit bf16 request is refused (BackendUnavailable, exit 5) rather than
quietly run in fp32. Each machine runs the half of these tests that its CPU decides.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgefer import Recognizer
from edgefer.errors import BackendUnavailable, InputError
from edgefer.sysinfo import cpu_has_bf16
from edgefer.zoo import PRETRAINED

pytest.importorskip("openvino")

ONNX = PRETRAINED["microexpnet-ck"].onnx
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions")
lacks_bf16 = pytest.mark.skipif(cpu_has_bf16(), reason="this CPU has bf16 instructions")


@pytest.fixture(scope="module")
def irs(microexpnet_ir, tmp_path_factory) -> dict[str, object]:
    """The bundled CK+ model as an fp32 IR (conftest's) and as a bf16 IR (float32 weights, spec precision bf16)."""
    from edgefer.convert.openvino_export import export_openvino
    from edgefer.runtime.onnxruntime_backend import OnnxRuntimeBackend

    spec = OnnxRuntimeBackend(ONNX).spec
    bf16 = export_openvino(ONNX, tmp_path_factory.mktemp("irs") / "ck.bf16.xml", replace(spec, precision="bf16"),
                           precision="bf16")
    return {"fp32": microexpnet_ir, "bf16": bf16}


@pytest.fixture(scope="module")
def faces(reference) -> np.ndarray:
    crops = reference["inputs"].astype(np.float32)
    return np.concatenate([crops, crops[:, :, ::-1]])


@needs_bf16
def test_bf16_ir_runs_bf16_within_the_gate(irs, faces):
    fp32 = Recognizer(irs["fp32"], threads=1)
    bf16 = Recognizer(irs["bf16"], threads=1)
    assert fp32.backend.precision == "fp32" and bf16.backend.precision == "bf16"
    expected, got = fp32.classify(faces), bf16.classify(faces)
    assert not np.array_equal(expected, got)  # it really computed in another precision
    assert np.abs(expected - got).max() <= 0.1
    assert (expected.argmax(1) == got.argmax(1)).mean() >= 0.99


@needs_bf16
def test_explicit_bf16_on_an_fp32_ir_and_on_onnx_through_openvino(irs, faces):
    from_ir = Recognizer(irs["fp32"], threads=1, precision="bf16")
    from_onnx = Recognizer(ONNX, backend="openvino", threads=1, precision="bf16")
    assert from_ir.backend.precision == from_onnx.backend.precision == "bf16"
    np.testing.assert_allclose(from_ir.classify(faces), Recognizer(irs["bf16"], threads=1).classify(faces), atol=1e-6)
    assert "precision='bf16'" in repr(from_ir)


@lacks_bf16
def test_without_bf16_the_ir_runs_fp32_and_says_so(irs, faces, caplog):
    bf16 = Recognizer(irs["bf16"], threads=1)
    assert bf16.backend.precision == "fp32"
    assert "runs in fp32" in caplog.text
    np.testing.assert_allclose(bf16.classify(faces), Recognizer(irs["fp32"], threads=1).classify(faces), atol=1e-6)


@lacks_bf16
def test_without_bf16_an_explicit_request_is_refused(irs):
    with pytest.raises(BackendUnavailable, match="no bf16 instructions"):
        Recognizer(irs["fp32"], precision="bf16")


def test_fp32_request_pins_fp32(irs):
    assert Recognizer(irs["bf16"], precision="fp32").backend.precision == "fp32"
    assert Recognizer(ONNX, precision="fp32").backend.precision == "fp32"


def test_requests_a_runtime_cannot_meet_are_refused(irs):
    with pytest.raises(BackendUnavailable, match="onnxruntime runs this model in fp32 and cannot be asked for bf16"):
        Recognizer(ONNX, precision="bf16")
    with pytest.raises(BackendUnavailable, match="fp32 model cannot run in int8"):
        Recognizer(irs["fp32"], precision="int8")
    with pytest.raises(InputError, match="unknown precision 'fp64'"):
        Recognizer(ONNX, precision="fp64")
