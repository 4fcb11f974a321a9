"""The issue's speed targets as pytest-benchmark benchmarks (MicroExpNet, batch 1, one thread).

Benchmarks, not timed tests: with the suite's default ``--benchmark-disable`` each runs once as a
smoke test. Measure with::

    python -m pytest tests/bench/test_bench_targets.py --benchmark-enable --benchmark-group-by=group

Targets (issue 13, a thinner runtime): ``Recognizer.classify`` on a ready 84x84 crop within 1.10x of a
bare ``InferenceSession.run``; ``Recognizer(IR).classify`` within 1.15x of a bare OpenVINO infer request
whose input tensor is set once; the bench harness' ONNX Runtime call within 1.3x of the bare session.
Compare the medians within one group of one run; ``tools/time_thin_runtime.py`` times the same
contenders in alternating blocks, which a shared machine needs.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.zoo import PRETRAINED

MODEL = PRETRAINED["microexpnet-ck"].onnx


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (84, 84)).astype(np.float32)


@pytest.mark.benchmark(group="microexpnet batch 1, 1 thread")
def test_bare_onnxruntime_session(benchmark, crop):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    feed = {"image": crop.reshape(1, 1, 84, 84)}
    logits = benchmark(session.run, None, feed)[0]
    assert logits.shape == (1, 8)


@pytest.mark.benchmark(group="microexpnet batch 1, 1 thread")
def test_recognizer_classify_crop(benchmark, crop):
    from edgefer import Recognizer

    recognizer = Recognizer("microexpnet-ck", threads=1)
    probs = benchmark(recognizer.classify, crop)
    assert probs.shape == (1, 8) and abs(float(probs.sum()) - 1) < 1e-5


@pytest.mark.benchmark(group="microexpnet batch 1, 1 thread")
def test_bench_harness_call(benchmark, crop):
    from edgefer.bench.catalog import BY_NAME
    from edgefer.bench.plan import ArtifactInfo
    from edgefer.bench.runners import prepare

    runner = prepare(BY_NAME["onnxruntime"], "microexpnet-ck", "fp32", 1, ArtifactInfo("onnx", "fp32", str(MODEL)))
    benchmark(runner.bind(crop.reshape(1, 1, 84, 84)))
    runner.close()


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    pytest.importorskip("openvino")
    from edgefer.convert.openvino_export import export_openvino
    from edgefer.runtime.onnxruntime_backend import OnnxRuntimeBackend

    return export_openvino(MODEL, tmp_path_factory.mktemp("ir") / "ck.xml", OnnxRuntimeBackend(MODEL).spec)


@pytest.mark.benchmark(group="microexpnet openvino batch 1, 1 thread")
def test_bare_openvino_request(benchmark, ir, crop):
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    compiled = ov.Core().compile_model(str(ir), "CPU", {props.inference_num_threads: 1,
                                                        hints.inference_precision: ov.Type.f32,
                                                        hints.performance_mode: hints.PerformanceMode.LATENCY})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(crop.reshape(1, 1, 84, 84), shared_memory=True))
    logits = benchmark(request.infer)[0]
    assert logits.shape == (1, 8)


@pytest.mark.benchmark(group="microexpnet openvino batch 1, 1 thread")
def test_recognizer_classify_crop_openvino(benchmark, ir, crop):
    from edgefer import Recognizer

    recognizer = Recognizer(ir, threads=1)
    probs = benchmark(recognizer.classify, crop)
    assert probs.shape == (1, 8) and abs(float(probs.sum()) - 1) < 1e-5
