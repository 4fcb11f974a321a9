"""OpenVINO runs the bundled ONNX models itself; a backend that cannot read a file says which convert makes one."""

import numpy as np
import pytest

pytest.importorskip("openvino")

from edgefer import Recognizer  # noqa: E402
from edgefer.errors import ModelError  # noqa: E402
from edgefer.runtime import open_backend  # noqa: E402
from edgefer.zoo import PRETRAINED  # noqa: E402


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_openvino_runs_bundled_onnx_like_onnxruntime(name, reference):
    crops = reference["inputs"]
    with Recognizer(name, backend="openvino", threads=1) as ov, Recognizer(name, threads=1) as ort:
        assert ov.backend.name == "openvino" and ov.backend.precision == "fp32"
        assert ov.spec == ort.spec
        np.testing.assert_allclose(ov.classify(crops), ort.classify(crops), atol=1e-5)


def test_openvino_onnx_without_edgefer_metadata_is_refused(tmp_path):
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(PRETRAINED["microexpnet-ck"].onnx.read_bytes().replace(b"edgefer.spec", b"edgefer.xxxx"))
    with pytest.raises(ModelError, match="no edgefer metadata"):
        open_backend(bare, "openvino")


@pytest.mark.parametrize(("backend", "target"), [("tensorrt", "--to tensorrt"), ("onnxruntime", "--to onnx")])
def test_a_file_the_backend_cannot_read_names_the_convert(tmp_path, backend, target):
    path = PRETRAINED["microexpnet-ck"].onnx if backend == "tensorrt" else tmp_path / "m.xml"
    with pytest.raises(ModelError, match=f"edgefer convert MODEL {target}"):
        open_backend(path, backend)
