"""One contract, every backend present (NNCF's shared test templates): PyTorch, ONNX Runtime, OpenVINO, TensorRT.

Each subclass of :class:`BackendContract` makes a real artifact of the bundled MicroExpNet carrying a
spec of its own, and the same tests run on it: the spec comes back as written, the logits match the
PyTorch backend through the one comparator, a batch of the wrong shape, dtype or memory layout is an
InputError, a closed backend raises BackendClosed, and a broken file is a ModelError at load.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from edgefer.errors import BackendClosed, InputError, ModelError
from edgefer.runtime import open_backend
from edgefer.zoo import PRETRAINED

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edgefer.convert.parity import compare_backends  # noqa: E402
from edgefer.convert.torch_backend import TorchBackend  # noqa: E402
from edgefer.train.models.weights import load_pretrained, save_weights  # noqa: E402


@pytest.fixture(scope="module")
def bundled():
    """The bundled CK+ model in PyTorch and a spec of this test's own (so a round trip proves it was read)."""
    model, spec = load_pretrained("microexpnet-ck")
    return model, replace(spec, source="backend contract test", extra={"written-by": "test_backend_contract"})


@pytest.fixture(scope="module")
def crops(reference) -> np.ndarray:
    """The authors' reference inputs: real face crops among them."""
    return np.ascontiguousarray(reference["inputs"][:, None], dtype=np.float32)


class BackendContract:
    """The tests every backend passes; a subclass names the backend and makes its artifact."""

    backend = ""
    fmt: str | None = None

    @pytest.fixture(scope="class")
    @classmethod
    def artifact(cls, bundled, tmp_path_factory):
        raise NotImplementedError

    def open(self, path):
        return open_backend(path, self.backend, threads=1)

    def test_the_spec_written_is_the_spec_read(self, artifact, bundled):
        with self.open(artifact) as backend:
            assert backend.name == self.backend
            assert backend.spec == replace(bundled[1], precision=backend.spec.precision)

    def test_logits_match_the_pytorch_backend(self, artifact, bundled, crops):
        model, spec = bundled
        with self.open(artifact) as backend, TorchBackend(model, spec=spec) as reference:
            logits = backend.run(crops)
            report = compare_backends(reference, backend, crops, "fp32", self.fmt)
        assert logits.shape == (len(crops), 8) and logits.dtype == np.float32
        assert report.passed, report.summary()

    def test_a_batch_it_cannot_take_is_an_input_error(self, artifact, crops):
        wrong = {
            "shape (N, 84, 84)": (crops[:, 0], "shape"),
            "shape (N, 84, 84, 1)": (np.ascontiguousarray(crops.transpose(0, 2, 3, 1)), "shape"),
            "size 83": (np.ascontiguousarray(crops[:, :, :83, :83]), "shape"),
            "float64": (crops.astype(np.float64), "dtype float64"),
            "uint8": (crops.astype(np.uint8), "dtype uint8"),
            "a strided view": (crops[::2], "non-contiguous"),
            "a list": (crops.tolist(), "got list"),
        }
        with self.open(artifact) as backend:
            for case, (pixels, named) in wrong.items():
                with pytest.raises(InputError, match=named):
                    backend.run(pixels)
                    pytest.fail(f"{case} was accepted")
            assert backend.run(crops[:1]).shape == (1, 8)  # still usable after refusing

    def test_a_closed_backend_raises_backend_closed(self, artifact, crops):
        backend = self.open(artifact)
        backend.run(crops[:2])
        backend.close()
        backend.close()  # idempotent
        with pytest.raises(BackendClosed, match=f"the {self.backend} backend is closed"):
            backend.run(crops[:2])
        with pytest.raises(BackendClosed, match=f"the {self.backend} backend is closed"):
            backend.run_checked(crops[:1])
        with pytest.raises(BackendClosed, match=f"the {self.backend} backend is closed"):
            backend.run_one(crops[0, 0])

    def test_run_checked_gives_what_run_gives(self, artifact, crops):
        with self.open(artifact) as backend:
            for batch in (crops[:1], crops[:3], crops):  # the bound small-batch path and the general one
                np.testing.assert_array_equal(backend.run_checked(batch), backend.run(batch))
            first = backend.run_checked(crops[:1])
            backend.run_checked(crops[1:2])
            np.testing.assert_array_equal(first, backend.run(crops[:1]))  # a result outlives the next call

    def test_run_one_gives_the_row_run_gives(self, artifact, crops):
        """The latency path: one (S, S) or (1, C, S, S) crop in, its logits as floats out, a fresh list each call."""
        with self.open(artifact) as backend:
            rows = [backend.run_one(crop[0]) for crop in crops[:4]]
            for crop, row in zip(crops[:4], rows, strict=True):
                assert type(row) is list and len(row) == 8 and all(type(v) is float for v in row)
                np.testing.assert_array_equal(np.float32(row), backend.run(crop[None])[0])
                np.testing.assert_array_equal(np.float32(backend.run_one(crop[None])), np.float32(row))
            assert rows[0] != rows[1]  # nothing shared between calls

    def test_a_broken_file_is_a_model_error(self, artifact, tmp_path):
        broken = tmp_path / artifact.name
        for part in artifact.parent.glob(artifact.stem + "*"):
            shutil.copy(part, tmp_path / part.name)
        data = artifact.read_bytes()
        broken.write_bytes(data[:len(data) // 2])
        with pytest.raises(ModelError):
            self.open(broken)


class TestTorch(BackendContract):
    backend = "torch"

    @pytest.fixture(scope="class")
    @classmethod
    def artifact(cls, bundled, tmp_path_factory):
        model, spec = bundled
        return save_weights(model, tmp_path_factory.mktemp("torch") / "microexpnet-ck.safetensors",
                            "microexpnet", spec)


class TestOnnxRuntime(BackendContract):
    backend = "onnxruntime"
    fmt = "onnx"

    @pytest.fixture(scope="class")
    @classmethod
    def artifact(cls, bundled, tmp_path_factory):
        from edgefer.convert.onnx_export import load_and_set_metadata

        path = tmp_path_factory.mktemp("onnx") / "microexpnet-ck.onnx"
        shutil.copy(PRETRAINED["microexpnet-ck"].onnx, path)
        return load_and_set_metadata(path, bundled[1])


class TestOpenVino(BackendContract):
    backend = "openvino"
    fmt = "openvino"

    @pytest.fixture(scope="class")
    @classmethod
    def artifact(cls, bundled, tmp_path_factory):
        pytest.importorskip("openvino", reason="OpenVINO is not installed")
        from edgefer.convert.openvino_export import export_openvino

        return export_openvino(PRETRAINED["microexpnet-ck"].onnx, tmp_path_factory.mktemp("ir") / "microexpnet-ck.xml",
                               bundled[1], "fp32")


@pytest.mark.gpu
class TestTensorRt(BackendContract):
    backend = "tensorrt"
    fmt = "tensorrt"

    @pytest.fixture(scope="class")
    @classmethod
    def artifact(cls, bundled, tmp_path_factory):
        from edgefer.convert.tensorrt_build import build_engine, tensorrt_available

        reason = tensorrt_available()
        if reason:
            pytest.skip(f"TensorRT cannot build here: {reason}")
        return build_engine(PRETRAINED["microexpnet-ck"].onnx, tmp_path_factory.mktemp("trt") / "microexpnet-ck.engine",
                            bundled[1], "fp32", batch=(1, 8, 64))


@pytest.mark.slow
def test_without_torch_the_torch_backend_is_unavailable_and_nothing_else_changes():
    """The loader names the torch backend by a string: without torch the runtime still imports and runs,
    and asking for torch is a one-line BackendUnavailable (exit 5)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from edgefer.errors import BackendUnavailable\n"
        "from edgefer.runtime import open_backend\n"
        "from edgefer.zoo import PRETRAINED\n"
        "with open_backend(PRETRAINED['microexpnet-ck'].onnx) as backend: print(backend.name)\n"
        "try:\n"
        "    open_backend(PRETRAINED['microexpnet-ck'].safetensors)\n"
        "except BackendUnavailable as err:\n"
        "    print('unavailable:', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[0] == "onnxruntime"
    assert lines[1].startswith("unavailable: backend 'torch' is not available")
