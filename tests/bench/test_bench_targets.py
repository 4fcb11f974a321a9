"""The issue's speed targets as pytest-benchmark benchmarks (MicroExpNet, batch 1, one thread).

Benchmarks, not timed tests: with the suite's default ``--benchmark-disable`` each runs once as a
smoke test. Measure with::

    python -m pytest tests/bench/test_bench_targets.py --benchmark-enable --benchmark-group-by=group

Targets: ``Recognizer.classify`` on a ready 84x84 crop within 1.25x of the bare session; the bench
harness' ONNX Runtime call within 1.3x of it (asserted in test_bench.py from medians of one run);
the best CPU backend at least 8x faster than the authors' TensorFlow graph (392 us, FACTS.md).
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
