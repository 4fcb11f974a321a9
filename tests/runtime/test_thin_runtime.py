"""The thin call path: small batches run through buffers bound once per thread (ONNX Runtime I/O binding,
an OpenVINO request whose input tensor is set once). Its results must be bitwise those of the plain call,
never alias each other, and stay right across threads, batch sizes and after bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgefer.errors import InputError
from edgefer.runtime import open_backend
from edgefer.zoo import PRETRAINED

ONNX = PRETRAINED["microexpnet-ck"].onnx


@pytest.fixture(scope="module")
def faces(reference) -> np.ndarray:
    """The authors' face crops and their mirror images, (N, 1, 84, 84) float32."""
    crops = reference["inputs"].astype(np.float32).reshape(-1, 1, 84, 84)
    return np.concatenate([crops, crops[..., ::-1]])


def plain_onnxruntime(pixels: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(ONNX), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": pixels})[0]


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_bound_batches_equal_one_plain_call(kind, microexpnet_ir, faces):
    backend = open_backend(ONNX if kind == "onnxruntime" else microexpnet_ir, threads=1)
    expected = np.concatenate([backend.run(np.ascontiguousarray(faces[i:i + 1])) for i in range(len(faces))])
    if kind == "onnxruntime":
        np.testing.assert_allclose(expected, plain_onnxruntime(faces), atol=1e-5)
    for batch in (1, 2, 3, 8, 9, len(faces)):  # bound (<= 8) and plain (> 8) calls, reused buffers
        for start in range(0, len(faces) - batch + 1, batch):
            got = backend.run(faces[start:start + batch])
            np.testing.assert_allclose(got, expected[start:start + batch], atol=1e-5)


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_results_never_alias_the_bound_buffers(kind, microexpnet_ir, faces):
    backend = open_backend(ONNX if kind == "onnxruntime" else microexpnet_ir, threads=1)
    first = backend.run(faces[:1])
    kept = first.copy()
    second = backend.run(faces[1:2])
    np.testing.assert_array_equal(first, kept)  # the next call did not overwrite the first result
    assert not np.shares_memory(first, second)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_input_checks_still_hold_on_the_thin_path(kind, microexpnet_ir, faces):
    from edgefer import Recognizer

    recognizer = Recognizer(ONNX if kind == "onnxruntime" else microexpnet_ir, threads=1)
    good = recognizer.classify(faces[0, 0])
    bad = faces[0, 0].copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        recognizer.classify(bad)
    with pytest.raises(InputError, match="84x84"):
        recognizer.classify(np.zeros((83, 84), np.float32))
    strided = np.zeros((84, 168), np.float32)
    strided[:, ::2] = faces[0, 0]
    np.testing.assert_array_equal(recognizer.classify(strided[:, ::2]), good)  # a non-contiguous view
    np.testing.assert_array_equal(recognizer.classify(faces[0, 0]), good)  # and nothing stuck after errors


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_threads_get_their_own_buffers(kind, microexpnet_ir, faces):
    backend = open_backend(ONNX if kind == "onnxruntime" else microexpnet_ir, threads=1)
    expected = [backend.run(faces[i:i + 1]) for i in range(len(faces))]
    failures: list[int] = []
    barrier = threading.Barrier(4)

    def worker(offset: int) -> None:
        barrier.wait()
        for round_ in range(50):
            index = (offset + round_) % len(faces)
            if not np.array_equal(backend.run(faces[index:index + 1]), expected[index]):
                failures.append(index)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def _stops_spinning(session) -> bool:
    options = session.get_session_options()
    try:
        return options.get_session_config_entry("session.force_spinning_stop") == "1"
    except RuntimeError:  # not set: ONNX Runtime's default, spinning between runs
        return False


def test_onnxruntime_workers_stop_spinning_when_a_run_returns():
    """Between runs a spinning worker takes a core from the rest of a frame's work (decoding, detection):
    edgefer's ONNX Runtime sessions, the classifier's and BlazeFace's, stop them; ``idle_spin`` opts back in."""
    from edgefer.detect import make_detector

    classifier = open_backend(ONNX, threads=2)
    assert _stops_spinning(classifier.session)
    assert _stops_spinning(make_detector("blazeface", threads=2)._session)
    spinning = open_backend(ONNX, "onnxruntime", threads=2, idle_spin=True)
    assert not _stops_spinning(spinning.session)
    crop = np.zeros((1, 1, 84, 84), np.float32)
    np.testing.assert_array_equal(classifier.run(crop), spinning.run(crop))
