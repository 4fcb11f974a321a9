"""`edgefer convert`: real artifacts, each run against PyTorch before it is written."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edgefer.convert.calibration import builtin_crops, crops_from_folder  # noqa: E402
from edgefer.convert.parity import compare  # noqa: E402
from edgefer.convert.pipeline import ConvertRequest, convert  # noqa: E402
from edgefer.errors import InputError  # noqa: E402
from edgefer.runtime import Recognizer, open_backend  # noqa: E402
from edgefer.spec import ModelSpec  # noqa: E402


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The bundled CK+ model as ONNX and OpenVINO IR in fp32, fp16 and int8."""
    pytest.importorskip("openvino")
    out = tmp_path_factory.mktemp("converted")
    records = {}
    for precision in ("fp32", "fp16", "int8"):
        artifacts = convert(ConvertRequest("microexpnet-ck", ("onnx", "openvino"), precision, out),
                            progress=lambda _: None)
        records.update({(a.format, precision): a for a in artifacts})
    return out, records


def test_all_precisions_written_and_gated(converted):
    out, records = converted
    stems = [f"microexpnet-ck.{p}" for p in ("fp16", "fp32", "int8")]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s}.onnx" for s in stems] + [f"{s}.xml" for s in stems] + [f"{s}.bin" for s in stems])
    for fmt in ("onnx", "openvino"):
        assert records[fmt, "fp32"].parity.max_abs_diff <= 1e-4
        assert records[fmt, "fp32"].runtime_precision == "fp32"  # not OpenVINO's silent bf16
        assert records[fmt, "fp16"].parity.max_abs_diff <= 1e-2
        assert records[fmt, "fp16"].parity.top1_agreement == 1.0
        assert records[fmt, "int8"].parity.top1_agreement >= 0.98
    assert all(r.status == "written" and r.parity.passed for r in records.values())
    assert records["openvino", "fp32"].size_bytes > 250_000  # xml + bin counted together


def test_int8_model_holds_qdq_nodes_and_metadata(converted):
    import onnx

    out, _ = converted
    proto = onnx.load(str(out / "microexpnet-ck.int8.onnx"))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    backend = open_backend(out / "microexpnet-ck.int8.onnx")
    assert backend.spec.precision == "int8" and backend.spec.model == "microexpnet-ck"
    assert len(backend.spec.source_sha256) == 64
    assert backend.spec.extra["onnx_opset"] == "18" and backend.spec.extra["batch"] == "dynamic 1..256"


def test_every_backend_and_precision_gives_the_same_face_label(converted, astronaut_path):
    out, _ = converted
    artifacts = [*out.glob("*.onnx"), *out.glob("*.xml")]
    faces = {p.name: Recognizer(p, threads=1).predict(astronaut_path) for p in artifacts}
    assert len(faces) == 6
    assert {len(f) for f in faces.values()} == {1}
    assert len({f[0].label for f in faces.values()}) == 1, faces
    assert len({f[0].box for f in faces.values()}) == 1


def test_fp32_artifact_equals_bundled_model(converted, reference):
    out, _ = converted
    logits = open_backend(out / "microexpnet-ck.fp32.onnx").run(reference["inputs"][:, None].copy())
    np.testing.assert_allclose(logits, reference["logits_ck"], atol=1e-4)


def test_calibration_crops_from_a_folder(tmp_path, astronaut_path, reference):
    import cv2

    (tmp_path / "sub").mkdir()
    (tmp_path / "photo.png").write_bytes(astronaut_path.read_bytes())
    cv2.imwrite(str(tmp_path / "sub" / "crop.png"), reference["inputs"][0].astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    crops = crops_from_folder(tmp_path)
    assert crops.shape == (2, 1, 84, 84) and crops.dtype == np.float32
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        crops_from_folder(tmp_path / "empty")


def test_builtin_crops_are_varied_real_faces():
    crops = builtin_crops(32)
    assert crops.shape == (32, 1, 84, 84)
    assert len({c.tobytes() for c in crops}) == 32
    assert 20 < crops.mean() < 235


def test_parity_gate_figures():
    logits = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    assert compare(logits, logits, "fp32").passed
    assert not compare(logits, logits + np.eye(8)[np.zeros(50, int)] * 0.5, "fp32").passed
    flipped = logits.copy()
    flipped[0] = -flipped[0]
    assert compare(logits, flipped, "int8").top1_agreement == pytest.approx(0.98)
    nan = logits.copy()
    nan[3, 3] = np.nan
    assert not compare(logits, nan, "int8").passed


@pytest.mark.slow
def test_failing_artifact_is_not_written(edgefer, tmp_path):
    """Weights scaled so activations overflow FP16: the FP16 artifact fails its gate, exit 4, no file."""
    from edgefer.spec import ModelSpec
    from edgefer.train.models.registry import create_model
    from edgefer.train.models.weights import save_weights

    torch.manual_seed(0)
    model = create_model("p12-xxs")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(60)
    checkpoint = save_weights(model, tmp_path / "loud.safetensors", "p12-xxs", ModelSpec(model="loud"))
    out = tmp_path / "out"
    result = edgefer("convert", checkpoint, "--to", "onnx", "--precision", "fp16", "--out", out)
    assert result.returncode == 4, result.stderr
    assert "parity gate" in result.stderr and "max |dp|" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".edgefer-convert-*"))


@pytest.mark.slow
@pytest.mark.parametrize("args,named", [
    (["--to", "onnx,tflite"], "tflite"),
    (["--precision", "int4"], "int4"),
    (["--precision", "int8", "--calib", "no/such/folder"], "no/such/folder"),
    (["--batch", "zero"], "zero"),
])
def test_bad_requests_exit_2_and_leave_nothing(edgefer, tmp_path, args, named):
    out = tmp_path / "out"
    result = edgefer("convert", "microexpnet-ck", *args, "--out", out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_unknown_model_and_bad_checkpoint(edgefer, tmp_path):
    assert edgefer("convert", "p13-q", "--out", tmp_path / "o").returncode == 2
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    result = edgefer("convert", bad, "--out", tmp_path / "o")
    assert result.returncode == 2 and "weights.safetensors" in result.stderr
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04K\x01.")
    result = edgefer("convert", pickle, "--out", tmp_path / "o")
    assert result.returncode == 2 and ".safetensors" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_json_for_a_family_member(edgefer, tmp_path):
    result = edgefer("convert", "p12-s", "--to", "onnx", "--batch", "4", "--out", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["status"] == "written" and record["parity"]["max_abs_diff"] <= 1e-4
    assert Path(record["path"]).name == "p12-s.fp32.b4.onnx"  # a fixed batch is in the name
    backend = open_backend(record["path"])
    assert backend.run(np.zeros((4, 1, 84, 84), np.float32)).shape == (4, 8)


@pytest.mark.slow
def test_a_run_checkpoint_is_named_after_its_run_or_name(edgefer, tmp_path):
    from edgefer.convert.sources import run_name
    from edgefer.train.models.registry import create_model
    from edgefer.train.models.weights import save_weights

    run = tmp_path / "ck-fold0"
    run.mkdir()
    weights = save_weights(create_model("p12-xxs"), run / "model.safetensors", "p12-xxs",
                           ModelSpec(model="p12-xxs:ck-fold0"))
    assert run_name(weights) == "ck-fold0" and run_name(tmp_path / "best.safetensors") == "best"
    result = edgefer("convert", weights, "--name", "micro-ck-f0", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["micro-ck-f0.fp32.onnx"]
    bad = edgefer("convert", weights, "--name", "../x", "--out", tmp_path / "out")
    assert bad.returncode == 2 and "--name '../x'" in bad.stderr


@pytest.mark.slow
def test_tensorrt_unavailable_is_a_one_line_refusal(edgefer, tmp_path):
    from edgefer.convert.tensorrt_build import tensorrt_available

    reason = tensorrt_available()
    if reason is None:
        pytest.skip("TensorRT is usable here; the refusal cannot happen")
    out = tmp_path / "out"
    result = edgefer("convert", "microexpnet-ck", "--to", "onnx,tensorrt", "--out", out)
    assert result.returncode == 5 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "TensorRT" in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_model_that_cannot_be_exported(edgefer, tmp_path):
    """A checkpoint whose model cannot be traced at the spec's input size: exit 2, one line, nothing left."""
    from dataclasses import replace

    from edgefer.spec import ModelSpec
    from edgefer.train.models.registry import create_model
    from edgefer.train.models.weights import save_weights

    model = create_model("p12-xxs")
    checkpoint = save_weights(model, tmp_path / "odd.safetensors", "p12-xxs", replace(ModelSpec(), input_size=64))
    out = tmp_path / "out"
    result = edgefer("convert", checkpoint, "--out", out)
    assert result.returncode == 2, result.stderr
    assert "cannot be exported" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".edgefer-convert-*"))


@pytest.mark.slow
def test_bf16_is_an_openvino_precision_gated_on_a_bf16_cpu(edgefer, tmp_path):
    """bf16 builds an IR that computes in bf16 where the CPU has it; elsewhere, and for other formats, the
    command refuses with exit 5 and one line before doing any work."""
    pytest.importorskip("openvino")
    from edgefer.sysinfo import cpu_has_bf16

    out = tmp_path / "out"
    result = edgefer("convert", "microexpnet-ck", "--to", "onnx,openvino", "--precision", "bf16", "--out", out)
    assert result.returncode == 5 and len(result.stderr.strip().splitlines()) == 1
    assert "bf16 is built for openvino only, not onnx" in result.stderr and not out.exists()
    if not cpu_has_bf16():
        result = edgefer("convert", "microexpnet-ck", "--to", "openvino", "--precision", "bf16", "--out", out)
        assert result.returncode == 5 and "no bf16 instructions" in result.stderr and not out.exists()
        return
    [artifact] = convert(ConvertRequest("microexpnet-ck", ("openvino",), "bf16", out), progress=lambda _: None)
    assert artifact.status == "written" and artifact.runtime_precision == "bf16"
    assert 0 < artifact.parity.max_abs_diff <= 0.1 and artifact.parity.top1_agreement >= 0.99
    assert open_backend(artifact.path).spec.precision == "bf16"
