"""OpenVINO IR: real exports from ONNX, the spec in rt_info, pinned precision, parity and concurrency."""

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

ov = pytest.importorskip("openvino")
torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edgefer.convert.calibration import builtin_crops  # noqa: E402
from edgefer.convert.openvino_export import RT_INFO_PATH, export_openvino, read_openvino_spec  # noqa: E402
from edgefer.errors import BackendUnavailable, InputError, ModelError  # noqa: E402
from edgefer.runtime import Recognizer, open_backend  # noqa: E402
from edgefer.runtime.base import softmax  # noqa: E402
from edgefer.runtime.openvino_backend import OpenVinoBackend  # noqa: E402
from edgefer.spec import METADATA_KEY  # noqa: E402
from edgefer.sysinfo import cpu_flags  # noqa: E402
from edgefer.train.models.weights import load_pretrained  # noqa: E402

MODELS = ("p12-s", "microexpnet-ck")
CPU_CAPABILITIES = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.fixture(scope="module")
def torch_models(p12s_model):
    return {"p12-s": p12s_model, "microexpnet-ck": load_pretrained("microexpnet-ck")}


@pytest.fixture(scope="module")
def onnx_files(p12s_onnx, microexpnet_onnx):
    """The session's exports: p12-s (random weights) and the shipped MicroExpNet (CK+ weights)."""
    return {"p12-s": p12s_onnx, "microexpnet-ck": microexpnet_onnx}


@pytest.fixture(scope="module")
def irs(torch_models, onnx_files, microexpnet_ir, tmp_path_factory):
    """(model name, precision) -> .xml, for both models in fp32 and fp16 (MicroExpNet fp32: the session's IR)."""
    folder = tmp_path_factory.mktemp("ir")
    built = {(name, precision): export_openvino(onnx_files[name], folder / f"{name}.{precision}.xml",
                                                torch_models[name][1], precision)
             for name in MODELS for precision in ("fp32", "fp16") if (name, precision) != ("microexpnet-ck", "fp32")}
    return {**built, ("microexpnet-ck", "fp32"): microexpnet_ir}


@pytest.fixture(scope="module")
def inputs(reference) -> np.ndarray:
    """Real face crops (the authors' reference set and built-in crops) plus uniform noise: 64 in all."""
    noise = np.random.default_rng(0).uniform(0, 255, (13, 1, 84, 84)).astype(np.float32)
    return np.concatenate([reference["inputs"][:, None], builtin_crops(32, seed=1), noise])


@pytest.fixture(scope="module")
def ck_fp32(irs):
    return OpenVinoBackend(irs["microexpnet-ck", "fp32"])


def torch_logits(model, pixels: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(pixels)).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_fp32_ir_matches_torch_and_really_runs_fp32(irs, torch_models, inputs, name):
    backend = OpenVinoBackend(irs[name, "fp32"], threads=1)
    assert backend.precision == "fp32"
    assert backend.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    for batch in (inputs[:1], inputs[:9], inputs):
        logits = backend.run(batch)
        assert logits.shape == (len(batch), 8) and logits.dtype == np.float32
        assert np.abs(logits - torch_logits(torch_models[name][0], batch)).max() <= 1e-4


def test_precision_is_pinned_where_openvino_would_pick_bf16(irs, ck_fp32):
    unpinned = ov.Core().compile_model(str(irs["microexpnet-ck", "fp32"]), "CPU")
    if "BF16" in CPU_CAPABILITIES:  # x86 with AVX512_BF16 / AMX: OpenVINO's default is bf16
        assert unpinned.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
    assert ck_fp32.precision == "fp32"
    assert ck_fp32.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


@pytest.mark.parametrize("name", MODELS)
def test_fp16_ir_keeps_probabilities_and_top1(irs, torch_models, inputs, name):
    backend = OpenVinoBackend(irs[name, "fp16"])
    assert backend.precision == ("fp16" if "FP16" in CPU_CAPABILITIES else "fp32")
    expected = softmax(torch_logits(torch_models[name][0], inputs))
    probs = softmax(backend.run(inputs))
    assert np.abs(probs - expected).max() <= 1e-2
    assert (probs.argmax(1) == expected.argmax(1)).all()
    fp32_bin, fp16_bin = (irs[name, p].with_suffix(".bin").stat().st_size for p in ("fp32", "fp16"))
    assert fp16_bin < 0.6 * fp32_bin


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_spec_round_trips_through_rt_info(irs, torch_models, precision):
    for name in MODELS:
        expected = replace(torch_models[name][1], precision=precision)
        model = ov.Core().read_model(str(irs[name, precision]))
        assert read_openvino_spec(model) == expected
        assert not model.has_rt_info(["framework", METADATA_KEY])  # no stale copy of the ONNX's spec
        assert OpenVinoBackend(irs[name, precision]).spec == expected


def test_int8_ir_from_qdq_onnx_matches_onnxruntime(onnx_files, torch_models, inputs, tmp_path):
    import onnxruntime

    from edgefer.convert.quantize import quantize_int8

    qdq = quantize_int8(onnx_files["microexpnet-ck"], tmp_path / "ck.int8.onnx", builtin_crops(64), "image")
    xml = export_openvino(qdq, tmp_path / "ck.int8.xml", torch_models["microexpnet-ck"][1], "int8")
    backend = OpenVinoBackend(xml)
    assert backend.spec.precision == "int8" and backend.precision.startswith("int8/")
    # The Q/DQ graph computed as written (unfused): ORT's fused int8 kernels saturate on AVX2 without VNNI.
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    expected = onnxruntime.InferenceSession(str(qdq), options).run(None, {"image": inputs})[0]
    logits = backend.run(inputs)
    agreement = (logits.argmax(1) == expected.argmax(1)).mean()
    if cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}:  # int8 dot products in full range: the same math
        assert np.abs(logits - expected).max() <= 1e-2 * np.abs(expected).max()
        assert agreement >= 0.98
    else:  # oneDNN halves the int8 weight range on CPUs without VNNI (no saturation), so OpenVINO drifts a little
        assert agreement >= 0.90, agreement


def test_precision_must_match_the_onnx(onnx_files, torch_models, tmp_path):
    spec = torch_models["p12-s"][1]
    with pytest.raises(ModelError, match="no QuantizeLinear"):
        export_openvino(onnx_files["p12-s"], tmp_path / "m.xml", spec, "int8")
    with pytest.raises(InputError, match="precision"):
        export_openvino(onnx_files["p12-s"], tmp_path / "m.xml", spec, "int4")
    with pytest.raises(InputError, match=".xml"):
        export_openvino(onnx_files["p12-s"], tmp_path / "m.ir", spec)
    assert list(tmp_path.iterdir()) == []


def test_recognizer_picks_openvino_and_agrees_with_onnxruntime(irs, astronaut_path):
    on_openvino = Recognizer(irs["microexpnet-ck", "fp32"], threads=1)
    on_onnxruntime = Recognizer("microexpnet-ck", threads=1)
    assert on_openvino.backend.name == "openvino" and on_onnxruntime.backend.name == "onnxruntime"
    got, expected = on_openvino.predict(astronaut_path), on_onnxruntime.predict(astronaut_path)
    assert len(got) == len(expected) == 1
    assert [(f.box, f.label) for f in got] == [(f.box, f.label) for f in expected]
    for label, score in expected[0].scores.items():
        assert abs(got[0].scores[label] - score) <= 1e-5


def test_eight_threads_share_one_backend(ck_fp32, inputs):
    rng = np.random.default_rng(3)
    batches = [inputs[rng.choice(len(inputs), size=int(rng.integers(1, 5)))] for _ in range(400)]
    single = [ck_fp32.run(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        shared = list(pool.map(ck_fp32.run, batches))
    assert all(np.array_equal(a, b) for a, b in zip(single, shared, strict=True))


def test_thread_count_and_device_names(irs):
    backend = open_backend(irs["p12-s", "fp32"], threads=1, device="cpu")
    assert backend.compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert backend.describe()["device"] == "cpu" and backend.threads == 1
    if not any(d.startswith("GPU") for d in ov.Core().available_devices):
        with pytest.raises(BackendUnavailable, match="gpu"):
            OpenVinoBackend(irs["p12-s", "fp32"], device="gpu")


def copy_ir(xml, folder, xml_bytes=None, bin_bytes=None):
    """A copy of an IR in ``folder`` with its .xml or .bin replaced (None keeps the original, b"-" drops)."""
    target = folder / "model.xml"
    target.write_bytes(xml.read_bytes() if xml_bytes is None else xml_bytes)
    weights = xml.with_suffix(".bin").read_bytes() if bin_bytes is None else bin_bytes
    if weights != b"-":
        target.with_suffix(".bin").write_bytes(weights)
    return target


@pytest.mark.parametrize("xml_bytes, bin_bytes, message", [
    (b"", None, "empty file"),
    (b"this is not xml at all", None, "not XML"),
    (b'<?xml version="1.0"?>\n<net name="x" version="11"><layers><layer id="0"', None, "not a loadable"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n", None, "Git LFS"),
    (None, b"-", r"model\.bin: no such model file"),
    (None, b"\0" * 16, "not a loadable"),
])
def test_broken_files_raise_model_error(irs, tmp_path, xml_bytes, bin_bytes, message):
    xml = copy_ir(irs["p12-s", "fp32"], tmp_path, xml_bytes, bin_bytes)
    with pytest.raises(ModelError, match=message):
        OpenVinoBackend(xml)


def test_missing_or_broken_spec_raises_model_error(onnx_files, torch_models, tmp_path):
    model = ov.convert_model(str(onnx_files["p12-s"]))
    ov.save_model(model, str(tmp_path / "plain.xml"), compress_to_fp16=False)
    with pytest.raises(ModelError, match="no edgefer metadata"):
        OpenVinoBackend(tmp_path / "plain.xml")
    spec = torch_models["p12-s"][1]
    assert OpenVinoBackend(tmp_path / "plain.xml", spec=spec).spec == spec
    model.set_rt_info('{"labels": ["only-one"]}', RT_INFO_PATH)
    ov.save_model(model, str(tmp_path / "broken.xml"), compress_to_fp16=False)
    with pytest.raises(ModelError, match="broken edgefer metadata"):
        OpenVinoBackend(tmp_path / "broken.xml")


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match=r"nothing\.xml: no such model file"):
        open_backend(tmp_path / "nothing.xml")


def test_interrupted_export_leaves_nothing_behind(onnx_files, torch_models, tmp_path, monkeypatch):
    def save_half_then_fail(model, path, compress_to_fp16=True):
        with open(str(path)[:-4] + ".bin", "wb") as handle:
            handle.write(b"\0" * 100)
        raise RuntimeError("disk full")

    spec = torch_models["p12-s"][1]
    monkeypatch.setattr(ov, "save_model", save_half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_openvino(onnx_files["p12-s"], tmp_path / "out" / "m.xml", spec)
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_reexport_keeps_the_old_ir_and_a_good_one_replaces_it(onnx_files, torch_models, tmp_path,
                                                                     monkeypatch):
    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    spec = torch_models["p12-s"][1]
    xml = export_openvino(onnx_files["p12-s"], tmp_path / "m.xml", spec)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["m.bin", "m.xml"]
    with monkeypatch.context() as patch:
        patch.setattr(ov, "save_model", killed)
        with pytest.raises(RuntimeError, match="killed"):
            export_openvino(onnx_files["p12-s"], xml, spec, "fp16")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    export_openvino(onnx_files["p12-s"], xml, spec, "fp16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]
    assert OpenVinoBackend(xml).spec.precision == "fp16"


def test_missing_openvino_is_backend_unavailable(irs, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(BackendUnavailable, match="openvino is not installed"):
        OpenVinoBackend(irs["p12-s", "fp32"])


def test_compile_config_keeps_only_the_devices_own_properties():
    """The GPU plugin has no INFERENCE_NUM_THREADS ("Option not found"): properties are filtered by the
    device's SUPPORTED_PROPERTIES. Proved here on the CPU plugin with a property only the GPU plugin has."""
    pytest.importorskip("openvino")
    import openvino.properties.hint as hints

    from edgefer.runtime.openvino_backend import _compile_config, _core, supported_config

    config = _compile_config("CPU", "fp32", 2, "latency")
    assert {str(k) for k in config} == {"PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT"}
    gpu_only = "GPU_QUEUE_THROTTLE"  # an Intel GPU plugin property; the CPU plugin does not list it
    assert gpu_only not in _core().get_property("CPU", "SUPPORTED_PROPERTIES")
    kept = supported_config("CPU", {**config, gpu_only: "HIGH"})
    assert gpu_only not in kept and kept == config
    assert kept[hints.performance_mode] == hints.PerformanceMode.LATENCY
