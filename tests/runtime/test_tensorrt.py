"""TensorRT: engines built from the exported ONNX and run against ONNX Runtime (gpu), and the sidecar
checks that refuse a wrong engine before TensorRT sees it (everywhere)."""

from __future__ import annotations

import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgefer.convert.tensorrt_build import (
    build_engine,
    profile_shapes,
    sidecar_record,
    tensorrt_available,
    write_engine,
)
from edgefer.errors import BackendUnavailable, InputError, ModelError, UnsafeModelError
from edgefer.runtime.loader import backend_class, open_backend
from edgefer.runtime.tensorrt_backend import (
    TensorRtBackend,
    check_compatible,
    pick_profile,
    profile_groups,
    read_sidecar,
    sidecar_path,
)
from edgefer.spec import ModelSpec
from edgefer.trust import read_verified_plan
from edgefer.zoo import pretrained

A100 = {"tensorrt": "10.3.0", "gpu": "NVIDIA A100-SXM4-40GB", "compute_capability": "8.0"}
UNAVAILABLE = tensorrt_available()
BATCH = (1, 8, 32)


def pixels(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, 1, 84, 84)).astype(np.float32)


def fake_engine(folder: Path, plan: bytes = b"not really a plan", **changes) -> Path:
    """A plan file with a well-formed sidecar (changed by ``changes``), as the builder writes them."""
    path = folder / "model.engine"
    path.write_bytes(plan)
    record = sidecar_record(ModelSpec(), A100, (1, 1, 8), {"flags": []}, plan)
    record.update(changes)
    sidecar_path(path).write_text(json.dumps(record), encoding="utf-8")
    return path


# --- everywhere: the checks made before TensorRT is imported -------------------------------------

def test_same_tensorrt_and_gpu_is_compatible():
    check_compatible(Path("model.engine"), A100, dict(A100))


@pytest.mark.parametrize("change", [{"tensorrt": "10.8.0"}, {"compute_capability": "9.0"},
                                    {"gpu": "NVIDIA A100-PCIE-40GB"}])
def test_other_tensorrt_or_gpu_is_refused_naming_both(change):
    here = {**A100, **change}
    with pytest.raises(BackendUnavailable) as err:  # exit 5: the environment does not match
        check_compatible(Path("model.engine"), A100, here)
    message = str(err.value)
    assert message.startswith("model.engine: built for TensorRT 10.3.0 on NVIDIA A100-SXM4-40GB (sm_80); ")
    assert f"this machine has TensorRT {here['tensorrt']} on {here['gpu']} " in message
    assert message.endswith("rebuild with edgefer convert")


def test_missing_engine_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        TensorRtBackend(tmp_path / "model.engine")
    with pytest.raises(ModelError, match="no such model file"):
        open_backend(tmp_path / "model.plan")


def test_missing_sidecar_is_model_error(tmp_path):
    engine = fake_engine(tmp_path)
    sidecar_path(engine).unlink()
    with pytest.raises(ModelError, match="no sidecar model.engine.json"):
        TensorRtBackend(engine)


@pytest.mark.parametrize("text", ["{not json", "[]", json.dumps({"format": "edgefer-tensorrt-sidecar/1"})])
def test_broken_sidecar_is_model_error(tmp_path, text):
    engine = fake_engine(tmp_path)
    sidecar_path(engine).write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match="sidecar"):
        TensorRtBackend(engine)


def test_sidecar_with_broken_spec_is_model_error(tmp_path):
    engine = fake_engine(tmp_path, spec={"labels": ["only-one"]})
    with pytest.raises(ModelError, match="broken edgefer spec"):
        TensorRtBackend(engine)


def test_changed_plan_is_refused_by_its_checksum(tmp_path):
    engine = fake_engine(tmp_path)
    engine.write_bytes(b"not really a plan!")
    with pytest.raises(UnsafeModelError, match="does not match the sha256"):
        TensorRtBackend(engine)


def test_sidecar_record_reads_back(tmp_path):
    engine = fake_engine(tmp_path)
    record = read_sidecar(engine)
    assert record["precision"] == "fp32" and record["batch"] == {"min": 1, "opt": 1, "max": 8}
    assert ModelSpec.from_json(json.dumps(record["spec"])) == ModelSpec()


def test_engine_is_written_plan_first_then_sidecar(tmp_path):
    """A rebuild that fails writing the plan leaves the old pair intact: the sidecar is never newer."""
    old = write_engine(tmp_path / "model.engine", b"old plan", sidecar_record(ModelSpec(), A100, (1, 1, 8), {},
                                                                            b"old plan"))
    record = read_sidecar(old)
    assert read_verified_plan(old, record["plan_sha256"], "sidecar") == b"old plan"
    (tmp_path / "blocked.engine").mkdir()  # the plan cannot be renamed over a folder
    with pytest.raises(OSError):
        write_engine(tmp_path / "blocked.engine", b"new plan",
                     sidecar_record(ModelSpec(), A100, (1, 1, 8), {}, b"new plan"))
    assert not sidecar_path(tmp_path / "blocked.engine").exists() and not list(tmp_path.glob(".*.tmp"))
    new = write_engine(old, b"new plan", sidecar_record(ModelSpec(), A100, (1, 1, 8), {}, b"new plan"))
    assert read_verified_plan(new, read_sidecar(new)["plan_sha256"], "sidecar") == b"new plan"


def test_build_on_a_non_cuda_device_is_refused(tmp_path):
    onnx_file = Path(shutil.copy(pretrained("microexpnet-ck").onnx, tmp_path / "model.onnx"))
    with pytest.raises(BackendUnavailable, match="CUDA devices"):
        build_engine(onnx_file, tmp_path / "out.engine", ModelSpec(), device="cpu")


def test_one_profile_per_benched_batch_each_tuned_for_it():
    assert profile_shapes((1, 1, 256)) == [(1, 1, 256)]
    assert profile_shapes((1, 1, 256), (256, 1, 1, 512)) == [(1, 1, 256), (1, 256, 256)]
    assert profile_shapes((4, 8, 32), (1, 16)) == [(4, 4, 32), (4, 16, 32)]
    assert profile_shapes((1, 1, 8), (1, 8), contexts=2) == [(1, 1, 8), (1, 1, 8), (1, 8, 8), (1, 8, 8)]


def test_concurrent_calls_get_a_profile_copy_each():
    """TensorRT: each context in concurrent use of a dynamic-shape engine holds its own profile; copies of a
    profile are how many calls may run at once on it."""
    profiles = tuple(profile_shapes((1, 1, 8), (1, 8), contexts=3))
    assert profile_groups(profiles) == {(1, 1, 8): [0, 1, 2], (1, 8, 8): [3, 4, 5]}
    assert profile_groups(((1, 1, 256),)) == {(1, 1, 256): [0]}  # one copy: calls on it wait their turn


def test_each_call_runs_on_the_profile_tuned_nearest_its_batch():
    profiles = ((1, 1, 256), (1, 32, 256), (1, 256, 256))
    assert [pick_profile(profiles, n) for n in (1, 4, 6, 17, 32, 100, 256)] == [0, 0, 1, 1, 1, 2, 2]
    assert pick_profile(((1, 1, 8),), 9) == 0  # outside every range: check_batch refuses it


def test_non_cuda_device_is_refused(tmp_path):
    with pytest.raises(BackendUnavailable, match="CUDA devices"):
        TensorRtBackend(fake_engine(tmp_path), device="cpu")


def test_registry_finds_the_backend_without_importing_tensorrt():
    assert backend_class("tensorrt") is TensorRtBackend


@pytest.mark.parametrize("kwargs", [{"precision": "int4"}, {"batch": (4, 2, 8)}, {"batch": (0, 1, 8)},
                                    {"workspace_mb": 0}])
def test_bad_build_request_is_input_error(tmp_path, kwargs):
    with pytest.raises(InputError):
        build_engine(tmp_path / "model.onnx", tmp_path / "model.engine", ModelSpec(), **kwargs)


def test_build_from_missing_onnx_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        build_engine(tmp_path / "model.onnx", tmp_path / "model.engine", ModelSpec())


@pytest.mark.skipif(UNAVAILABLE is None, reason="TensorRT is usable here")
def test_without_tensorrt_there_is_a_reason_and_a_clear_error(tmp_path):
    assert isinstance(UNAVAILABLE, str) and UNAVAILABLE
    with pytest.raises(BackendUnavailable):
        TensorRtBackend(fake_engine(tmp_path))
    onnx_file = Path(shutil.copy(pretrained("microexpnet-ck").onnx, tmp_path / "model.onnx"))  # a valid ONNX
    with pytest.raises(BackendUnavailable):
        build_engine(onnx_file, tmp_path / "out.engine", ModelSpec())
    assert not list(tmp_path.glob("out.engine*"))


# --- gpu: real engines --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def trt():
    module = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    if UNAVAILABLE:
        pytest.skip(UNAVAILABLE)
    return module


@pytest.fixture(scope="session")
def onnx_fp32(trt, tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from edgefer.convert.onnx_export import export_onnx_proto, save_onnx
    from edgefer.train.models.weights import load_pretrained

    model, spec = load_pretrained("microexpnet-ck")
    return save_onnx(export_onnx_proto(model, spec), tmp_path_factory.mktemp("onnx") / "microexpnet-ck.onnx")


@pytest.fixture(scope="session")
def engines(onnx_fp32, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("engines")
    spec = open_backend(onnx_fp32, threads=1).spec
    return {precision: build_engine(onnx_fp32, folder / f"microexpnet-ck.{precision}.engine", spec,
                                    precision=precision, batch=BATCH, timing_cache=folder / "timing.cache")
            for precision in ("fp32", "fp16")}


@pytest.fixture(scope="session")
def reference(onnx_fp32):
    return open_backend(onnx_fp32, threads=1)


@pytest.mark.gpu
def test_sidecar_records_the_build(trt, engines):
    engine = engines["fp32"]
    record = read_sidecar(engine)
    assert record["tensorrt"] == trt.__version__ and record["precision"] == "fp32"
    assert record["batch"] == dict(zip(("min", "opt", "max"), BATCH, strict=True))
    assert record["spec"]["precision"] == "fp32" and record["build"]["tf32"] is False
    assert record["plan_sha256"] == hashlib.sha256(engine.read_bytes()).hexdigest()
    assert (engine.parent / "timing.cache").is_file()
    assert not list(engine.parent.glob(".*.tmp"))


@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 17])
def test_fp32_engine_matches_onnxruntime(engines, reference, batch):
    with TensorRtBackend(engines["fp32"]) as backend:
        assert backend.precision == "fp32" and backend.batch_range == BATCH
        logits = backend.run(pixels(batch, seed=batch))
    assert logits.dtype == np.float32 and logits.shape == (batch, 8)
    np.testing.assert_allclose(logits, reference.run(pixels(batch, seed=batch)), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 17])
def test_fp16_engine_is_close_to_onnxruntime(engines, reference, batch):
    with TensorRtBackend(engines["fp16"]) as backend:
        assert backend.precision == "fp16"
        logits = backend.run(pixels(batch, seed=batch))
    expected = reference.run(pixels(batch, seed=batch))
    assert np.abs(logits - expected).max() <= 5e-2 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.gpu
def test_engine_with_a_profile_per_batch_matches_onnxruntime_at_each(onnx_fp32, reference, tmp_path):
    spec = open_backend(onnx_fp32, threads=1).spec
    engine = build_engine(onnx_fp32, tmp_path / "opt.engine", spec, batch=(1, 1, 64), opt_batches=(1, 64))
    assert read_sidecar(engine)["build"]["profiles"] == [1, 64]
    with TensorRtBackend(engine) as backend:
        assert backend.describe()["profiles_opt"] == [1, 64]
        for batch in (1, 3, 40, 64):
            np.testing.assert_allclose(backend.run(pixels(batch, seed=batch)), reference.run(pixels(batch, seed=batch)),
                                       rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_batch_outside_the_profile_is_input_error(engines):
    with TensorRtBackend(engines["fp32"]) as backend, pytest.raises(InputError, match="max 32"):
        backend.run(pixels(33))


@pytest.mark.gpu
@pytest.mark.parametrize("change", [{"tensorrt": "9.0.0"}, {"compute_capability": "1.0"},
                                    {"gpu": "Some Other GPU"}])
def test_doctored_sidecar_is_refused(engines, tmp_path, change):
    engine = Path(shutil.copy(engines["fp32"], tmp_path / "model.engine"))
    record = read_sidecar(engines["fp32"])
    sidecar_path(engine).write_text(json.dumps({**record, **change}), encoding="utf-8")
    with pytest.raises(BackendUnavailable, match="rebuild with edgefer convert"):
        TensorRtBackend(engine)


@pytest.mark.gpu
def test_recognizer_on_the_engine_gives_onnxruntime_labels(engines, onnx_fp32, astronaut_path):
    from edgefer import Recognizer

    with Recognizer(engines["fp32"]) as on_trt, Recognizer(onnx_fp32, threads=1) as on_ort:
        trt_faces, ort_faces = on_trt.predict(astronaut_path), on_ort.predict(astronaut_path)
    assert trt_faces and [f.label for f in trt_faces] == [f.label for f in ort_faces]


@pytest.mark.gpu
def test_eight_threads_sharing_one_backend_give_single_thread_results(engines):
    batches = [pixels(1 + i % 5, seed=i) for i in range(64)]
    with TensorRtBackend(engines["fp32"]) as backend:
        expected = [backend.run(b) for b in batches]
        with ThreadPoolExecutor(max_workers=8) as pool:  # threads made after the backend
            results = list(pool.map(backend.run, batches))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_an_engine_with_profile_copies_runs_calls_at_once(onnx_fp32, reference, tmp_path):
    """contexts=4: four copies of the profile, four contexts each on its own, eight threads agree with one."""
    engine = build_engine(onnx_fp32, tmp_path / "m.fp32.x4.engine", reference.spec, precision="fp32",
                          batch=BATCH, contexts=4)
    assert read_sidecar(engine)["build"]["profiles"] == [BATCH[1]] * 4
    batches = [pixels(1 + i % 5, seed=i) for i in range(64)]
    with TensorRtBackend(engine) as backend:
        assert backend.describe()["contexts_per_profile"] == {BATCH[1]: 4}
        expected = [backend.run(b) for b in batches]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(backend.run, batches))
        (profile_pool,) = backend._pools.values()
        assert 1 <= profile_pool.size <= 4  # contexts made as callers overlap, never more than the copies
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_run_timed_split_adds_up_to_the_call(engines):
    """Copy in + compute + copy out, timed by GPU events, fit inside the call's wall time and are most of it."""
    import time

    batch = pixels(32)
    with TensorRtBackend(engines["fp32"]) as backend:
        for _ in range(3):
            backend.run_timed(batch)
        walls, splits = [], []
        for _ in range(20):
            start = time.perf_counter()
            logits, *split = backend.run_timed(batch)
            walls.append((time.perf_counter() - start) * 1e3)
            splits.append(split)
    assert logits.shape == (32, 8)
    h2d_ms, compute_ms, d2h_ms = np.median(np.asarray(splits), axis=0)
    wall = float(np.median(walls))
    assert min(h2d_ms, compute_ms, d2h_ms) > 0
    assert h2d_ms + compute_ms + d2h_ms <= 1.10 * wall + 0.05, (h2d_ms, compute_ms, wall)
    assert h2d_ms + compute_ms + d2h_ms >= 0.1 * wall, (h2d_ms, compute_ms, d2h_ms, wall)


@pytest.mark.gpu
def test_close_during_inference_waits_for_the_calls_in_flight(engines, reference):
    """Eight threads infer while the main thread closes: every call either returns the right logits (its
    buffers were not freed under it) or is refused as closed; nothing crashes."""
    import threading

    from edgefer.errors import BackendClosed

    backend = TensorRtBackend(engines["fp32"])
    batch = pixels(32, seed=9)
    expected = reference.run(batch)
    results, ends, started = [], [], threading.Event()

    def infer():
        for _ in range(200):
            try:
                logits = backend.run(batch)
            except BackendClosed:
                ends.append("refused")
                return
            started.set()
            results.append(logits)
        ends.append("finished")

    threads = [threading.Thread(target=infer) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    backend.close()
    for thread in threads:
        thread.join()
    assert results and len(ends) == 8 and "refused" in ends
    for logits in results:
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_close_leaves_no_cuda_context_pushed(engines):
    """In a fresh thread (no current context to start with): load, run, close, and no context is current."""
    import threading

    import pycuda.driver as cuda

    outcome = []

    def life():
        backend = TensorRtBackend(engines["fp32"])
        backend.run(pixels(1))
        backend.close()
        try:
            cuda.Context.get_device()  # fails with no current context
            outcome.append("a context is still pushed")
        except cuda.Error:
            outcome.append("clean")

    thread = threading.Thread(target=life)
    thread.start()
    thread.join()
    assert outcome == ["clean"]


@pytest.mark.gpu
def test_int8_engine_from_qdq_onnx(onnx_fp32, tmp_path):
    from edgefer.convert.calibration import builtin_crops
    from edgefer.convert.quantize import quantize_int8

    spec = open_backend(onnx_fp32, threads=1).spec
    qdq = quantize_int8(onnx_fp32, tmp_path / "int8.onnx", builtin_crops(64, seed=0), spec.input_name)
    with pytest.raises(ModelError, match="Q/DQ"):
        build_engine(onnx_fp32, tmp_path / "bad.engine", spec, precision="int8", batch=BATCH)
    engine = build_engine(qdq, tmp_path / "int8.engine", spec, precision="int8", batch=BATCH)
    crops = builtin_crops(32, seed=1)
    with TensorRtBackend(engine) as backend:
        assert backend.precision == "int8"
        logits = backend.run(crops)
    expected = open_backend(qdq, threads=1, spec=spec).run(crops)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_contexts_are_checked_before_any_work(tmp_path):
    from edgefer.convert.pipeline import ConvertRequest, validate

    for wrong in (0, 9, True):
        with pytest.raises(InputError, match="--contexts"):
            validate(ConvertRequest("microexpnet-ck", ("onnx",), "fp32", tmp_path, contexts=wrong))
    validate(ConvertRequest("microexpnet-ck", ("onnx",), "fp32", tmp_path, contexts=4))


def test_a_throughput_bench_builds_a_profile_copy_per_request_in_flight():
    from edgefer.bench.plan import BenchRequest
    from edgefer.bench.run import engine_contexts
    from edgefer.runtime.tensorrt_backend import MAX_WORKERS

    assert engine_contexts(BenchRequest()) == 1  # latency mode: one call at a time
    assert engine_contexts(BenchRequest(mode="throughput", in_flight=3)) == 3
    assert engine_contexts(BenchRequest(mode="throughput", in_flight=64)) == MAX_WORKERS
