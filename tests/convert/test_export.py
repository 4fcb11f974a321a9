"""ONNX export of the family: metadata, dynamic batch, numbers equal to PyTorch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgefer.convert.onnx_export import DEFAULT_OPSET, export_onnx_proto, onnx_opset, save_onnx  # noqa: E402
from edgefer.runtime import open_backend  # noqa: E402
from edgefer.spec import ModelSpec  # noqa: E402
from edgefer.train.models.registry import create_model  # noqa: E402


@pytest.mark.parametrize("name", ["v-s", "p1-xxs", "p2-xs", "p12-m"])
def test_exported_family_member_matches_torch(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    spec = ModelSpec(model=name)
    proto = export_onnx_proto(model, spec)
    assert onnx_opset(proto) == DEFAULT_OPSET
    path = save_onnx(proto, tmp_path / f"{name}.onnx")
    backend = open_backend(path, threads=1)
    assert backend.spec == spec
    for batch in (1, 7):
        pixels = np.random.default_rng(batch).uniform(0, 255, (batch, 1, 84, 84)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(pixels)).numpy()
        np.testing.assert_allclose(backend.run(pixels), expected, rtol=1e-5, atol=1e-4)
    assert not list(tmp_path.glob(".*.tmp"))
