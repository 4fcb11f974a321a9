"""The issue's speed targets as pytest-benchmark benchmarks (MicroExpNet, batch 1, one thread).

Benchmarks, not timed tests: with the suite's default ``--benchmark-disable`` each runs once as a
smoke test. Measure with::

    python -m pytest tests/bench/test_bench_targets.py --benchmark-enable --benchmark-group-by=group

Targets (issue 13, a thinner runtime): ``Recognizer.classify`` on a ready 84x84 crop within 1.10x of a
bare ``InferenceSession.run``; ``Recognizer(IR).classify`` within 1.15x of a bare OpenVINO infer request
whose input tensor is set once; the bench harness' ONNX Runtime call within 1.3x of the bare session;
``Recognizer(IR).classify`` on a batch of 256 crops, 2 threads, at the backend's own throughput (its NaN
check once took half of it: OpenBLAS threads left spinning after a multithreaded dot).
Compare the medians within one group of one run; ``tools/time_thin_runtime.py`` times the same
contenders in alternating blocks, which a shared machine needs.
Each benchmark also checks that its path computes the numbers of the bare session, so the
suite's one smoke run of each proves they time the same work.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.zoo import PRETRAINED

MODEL = PRETRAINED["microexpnet-ck"].onnx


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (84, 84)).astype(np.float32)


@pytest.fixture(scope="module")
def bare_session():
    """The floor: an ONNX Runtime session on the shipped file, one thread, nothing around it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    return ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def bare_logits(bare_session, crop) -> np.ndarray:
    return bare_session.run(None, {"image": crop.reshape(1, 1, 84, 84)})[0]


@pytest.mark.benchmark(group="microexpnet batch 1, 1 thread")
def test_bare_onnxruntime_session(benchmark, bare_session, crop, bare_logits):
    logits = benchmark(bare_session.run, None, {"image": crop.reshape(1, 1, 84, 84)})[0]
    assert logits.shape == (1, 8) and np.isfinite(logits).all()
    np.testing.assert_array_equal(logits, bare_logits)  # the same session, the same input: bitwise


@pytest.mark.benchmark(group="microexpnet batch 1, 1 thread")
def test_recognizer_classify_crop(benchmark, crop, bare_logits):
    from edgefer import Recognizer

    recognizer = Recognizer("microexpnet-ck", threads=1)
    probs = benchmark(recognizer.classify, crop)
    expected = np.exp(bare_logits - bare_logits.max()) / np.exp(bare_logits - bare_logits.max()).sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    recognizer.close()


@pytest.mark.benchmark(group="microexpnet batch 1, 1 thread")
def test_bench_harness_call(benchmark, crop, bare_logits):
    from edgefer.bench.catalog import BY_NAME
    from edgefer.bench.plan import ArtifactInfo
    from edgefer.bench.runners import prepare

    pixels = crop.reshape(1, 1, 84, 84)
    runner = prepare(BY_NAME["onnxruntime"], "microexpnet-ck", "fp32", 1, ArtifactInfo("onnx", "fp32", str(MODEL)))
    try:
        benchmark(runner.bind(pixels))
        np.testing.assert_allclose(runner.infer(pixels), bare_logits, rtol=1e-6, atol=1e-6)
    finally:
        runner.close()


@pytest.mark.benchmark(group="microexpnet openvino batch 1, 1 thread")
def test_bare_openvino_request(benchmark, microexpnet_ir, crop, bare_logits):
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    compiled = ov.Core().compile_model(str(microexpnet_ir), "CPU",
                                       {props.inference_num_threads: 1, hints.inference_precision: ov.Type.f32,
                                        hints.performance_mode: hints.PerformanceMode.LATENCY})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(crop.reshape(1, 1, 84, 84), shared_memory=True))
    logits = benchmark(request.infer)[0]
    assert logits.shape == (1, 8)
    np.testing.assert_allclose(logits, bare_logits, rtol=1e-4, atol=1e-4)


@pytest.mark.benchmark(group="microexpnet openvino batch 1, 1 thread")
def test_recognizer_classify_crop_openvino(benchmark, microexpnet_ir, crop, bare_logits):
    from edgefer import Recognizer

    recognizer = Recognizer(microexpnet_ir, threads=1)
    probs = benchmark(recognizer.classify, crop)
    expected = np.exp(bare_logits - bare_logits.max()) / np.exp(bare_logits - bare_logits.max()).sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def crops_256() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (256, 84, 84)).astype(np.float32)


@pytest.mark.benchmark(group="microexpnet openvino batch 256, 2 threads")
def test_openvino_backend_run_256(benchmark, microexpnet_ir, crops_256):
    from edgefer.runtime import open_backend

    backend = open_backend(microexpnet_ir, threads=2)
    logits = benchmark(backend.run, crops_256.reshape(256, 1, 84, 84))
    assert logits.shape == (256, 8) and np.isfinite(logits).all()


@pytest.mark.benchmark(group="microexpnet openvino batch 256, 2 threads")
def test_recognizer_classify_256_openvino(benchmark, microexpnet_ir, crops_256):
    from edgefer import Recognizer
    from edgefer.runtime.base import softmax

    recognizer = Recognizer(microexpnet_ir, threads=2)
    probs = benchmark(recognizer.classify, crops_256)
    expected = softmax(recognizer.backend.run(crops_256.reshape(256, 1, 84, 84)))
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
