"""One Recognizer shared by 8 threads: 100,000 face predictions equal the single-thread results.

ONNX Runtime shares one session; OpenVINO gives each thread its own InferRequest; TensorRT (gpu)
lends each concurrent call its own execution context and stream and pushes the CUDA context around
it. The threads are created after the Recognizer, as a server's would be. Throughput is printed
(``pytest -s``), never asserted.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgefer import Recognizer
from edgefer.runtime import open_backend
from edgefer.zoo import resolve_artifact

WORKERS = 8
PREDICTIONS = 100_000
BATCH = 50  # crops per call: 2,000 calls in all
DISTINCT = WORKERS * 500  # 8 threads x 500 distinct frames each


@pytest.fixture(scope="module")
def batches(reference) -> list[np.ndarray]:
    """4,000 distinct 84x84 uint8 crops in batches of 50: the authors' face crops, mirrored, then noise."""
    faces = reference["inputs"].astype(np.uint8)
    real = np.concatenate([faces, faces[:, :, ::-1]])
    noise = np.random.default_rng(7).integers(0, 256, (DISTINCT - len(real), 84, 84), dtype=np.uint8)
    frames = np.concatenate([real, noise])
    return list(frames.reshape(-1, BATCH, 84, 84))


def share_between_threads(recognizer: Recognizer, batches: list[np.ndarray]) -> dict[str, float]:
    """Run 100,000 predictions single-threaded once per distinct batch, then from 8 threads; compare."""
    start = time.perf_counter()
    expected = [recognizer.classify(batch) for batch in batches]
    single_rate = len(batches) * BATCH / (time.perf_counter() - start)

    calls = PREDICTIONS // BATCH
    barrier = threading.Barrier(WORKERS)

    def worker(index: int) -> list[tuple[int, np.ndarray]]:
        barrier.wait()  # all eight start together
        # Worker w takes calls w, w+8, ...: 10 of the 80 batches, 500 distinct frames, 12,500 predictions.
        return [(call % len(batches), recognizer.classify(batches[call % len(batches)]))
                for call in range(index, calls, WORKERS)]

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # threads made after the Recognizer
        results = [result for future in [pool.submit(worker, w) for w in range(WORKERS)]
                   for result in future.result()]
    shared_seconds = time.perf_counter() - start

    assert len(results) == calls and sum(len(probs) for _, probs in results) == PREDICTIONS
    mismatched = [index for index, probs in results if not np.array_equal(probs, expected[index])]
    assert not mismatched, f"{len(mismatched)} of {calls} calls differ from the single-thread results"
    figures = {"single_thread_per_s": single_rate, "eight_threads_per_s": PREDICTIONS / shared_seconds,
               "eight_threads_seconds": shared_seconds}
    print(f"\n{recognizer.backend.name}: " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()))
    return figures


def test_onnxruntime_session_shared_by_eight_threads(batches):
    with Recognizer("microexpnet-ck", threads=1) as recognizer:
        share_between_threads(recognizer, batches)


def test_openvino_one_request_per_thread(batches, microexpnet_ir):
    with Recognizer(microexpnet_ir, threads=1) as recognizer:
        assert recognizer.backend.name == "openvino"
        share_between_threads(recognizer, batches)


@pytest.mark.parametrize(("detector", "counts"), [("haar-exact", [1, 1, 2, 1, 0, 1]),
                                                  ("blazeface", [1, 1, 0, 1, 0, 1])])
def test_detection_and_crops_from_eight_threads(astronaut_bgr, detector, counts):
    """The whole path (validation, detection: Haar with one classifier per thread, BlazeFace's one
    session; crops) shared. BlazeFace short range misses the two faces of the double-width frame (9% of
    its width each, under its ~15%)."""
    frames = [astronaut_bgr, astronaut_bgr[:, ::-1], np.hstack([astronaut_bgr, astronaut_bgr[:, ::-1]]),
              astronaut_bgr[40:, 30:], np.full((200, 300, 3), 90, np.uint8), astronaut_bgr[:, :, 1]]
    with Recognizer("microexpnet-ck", threads=1, detector=detector) as recognizer:
        expected = [recognizer.predict(frame) for frame in frames]
        assert [len(faces) for faces in expected] == counts
        work = [index % len(frames) for index in range(WORKERS * 4)]
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(lambda index: (index, recognizer.predict(frames[index])), work))
    assert all(faces == expected[index] for index, faces in results)


# --- gpu: TensorRT ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    from edgefer.convert.tensorrt_build import build_engine, tensorrt_available

    reason = tensorrt_available()
    if reason:
        pytest.skip(reason)
    onnx = resolve_artifact("microexpnet-ck")
    return build_engine(onnx, tmp_path_factory.mktemp("engine") / "microexpnet-ck.engine",
                        open_backend(onnx, threads=1).spec, batch=(1, BATCH, BATCH))


@pytest.mark.gpu
def test_tensorrt_context_and_stream_per_concurrent_call(batches, engine):
    with Recognizer(engine) as recognizer:
        assert recognizer.backend.name == "tensorrt"
        share_between_threads(recognizer, batches)


@pytest.mark.slow
@pytest.mark.gpu
def test_tensorrt_threads_exit_cleanly(engine):
    """Threads made after init, then interpreter exit: no CUDA context-stack or handle complaints."""
    code = textwrap.dedent(f"""
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        from edgefer import Recognizer
        recognizer = Recognizer({str(engine)!r})
        crops = np.random.default_rng(0).uniform(0, 255, (48, 84, 84)).astype(np.float32)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(recognizer.classify, np.split(crops, 12)))
        assert np.allclose(np.concatenate(results), recognizer.classify(crops), atol=1e-5)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    for complaint in ("context stack", "invalid resource handle", "no currently active context"):
        assert complaint not in out.stderr.lower()
