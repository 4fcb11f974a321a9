"""The device runtime: Recognizer on real photos with the bundled models, no torch anywhere."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgefer import LABELS, Recognizer
from edgefer.errors import InputError, ModelError


def test_one_face_in_the_astronaut_photo(recognizer, astronaut_path, reference):
    faces = recognizer.predict(astronaut_path)
    assert len(faces) == 1
    face = faces[0]
    assert face.box == tuple(int(v) for v in reference["astronaut_box"])
    assert set(face.scores) == set(LABELS)
    assert abs(sum(face.scores.values()) - 1) < 1e-5
    assert face.label == max(face.scores, key=face.scores.get)


def test_probabilities_are_the_softmax_of_the_authors_logits(recognizer, astronaut_path, reference):
    face = recognizer.predict(astronaut_path)[0]
    logits = reference["logits_ck"][reference["astronaut_index"]]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose([face.scores[label] for label in LABELS], expected, atol=1e-5)


def test_array_path_rgb_and_gray_inputs_agree(recognizer, astronaut_path, astronaut_bgr):
    from_file = recognizer.predict(astronaut_path)
    from_bgr = recognizer.predict(astronaut_bgr)
    from_rgb = recognizer.predict(np.ascontiguousarray(astronaut_bgr[:, :, ::-1]), color="rgb")
    assert from_file == from_bgr == from_rgb
    import cv2

    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    faces = recognizer.predict(gray)
    assert len(faces) == 1 and faces[0].box == from_file[0].box


def test_two_faces_side_by_side(recognizer, astronaut_bgr):
    pair = np.hstack([astronaut_bgr, astronaut_bgr[:, ::-1]])
    faces = recognizer.predict(pair)
    assert len(faces) == 2
    xs = sorted(face.box[0] for face in faces)
    assert xs[0] < astronaut_bgr.shape[1] <= xs[1]


def test_no_face_gives_no_result(recognizer):
    assert recognizer.predict(np.full((300, 300, 3), 90, np.uint8)) == []
    assert recognizer.predict(np.zeros((1, 1), np.uint8)) == []


def test_ready_crops_single_and_batched(recognizer, reference):
    inputs = reference["inputs"]
    probs = recognizer.classify(inputs)
    assert probs.shape == (len(inputs), 8)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(recognizer.classify(inputs[3]), probs[3:4], atol=1e-6)
    as_uint8 = inputs[3:5].astype(np.uint8)
    np.testing.assert_allclose(recognizer.classify(as_uint8[..., None]),
                               recognizer.classify(as_uint8.astype(np.float32)), atol=1e-6)


def test_no_detect_takes_the_image_as_the_face_box(recognizer, astronaut_bgr):
    """detect=False on the detector's own face box gives what detection gives on the whole photo."""
    (detected,) = recognizer.predict(astronaut_bgr)
    x, y, w, h = detected.box
    (whole,) = recognizer.predict(astronaut_bgr[y:y + h, x:x + w], detect=False)
    assert whole.box is None
    assert whole.scores == pytest.approx(detected.scores, abs=1e-6)


def test_predict_many_batches_all_faces(recognizer, astronaut_bgr):
    results = recognizer.predict_many([astronaut_bgr, np.full((64, 64), 10, np.uint8), astronaut_bgr])
    assert [len(faces) for faces in results] == [1, 0, 1]
    assert results[0] == results[2]


def test_both_bundled_models_load_and_differ(astronaut_bgr):
    ck = Recognizer("microexpnet-ck").predict(astronaut_bgr)[0]
    oulu = Recognizer("microexpnet-oulu").predict(astronaut_bgr)[0]
    assert ck.box == oulu.box and ck.scores != oulu.scores


def test_artifact_path_and_forced_backend(recognizer):
    by_path = Recognizer(recognizer.path, backend="onnxruntime", threads=2)
    assert by_path.backend.name == "onnxruntime" and by_path.spec == recognizer.spec


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'microexpnet-xyz'"):
        Recognizer("microexpnet-xyz")


@pytest.mark.parametrize("content,match", [
    (b"", "empty file"),
    (b"\x08\x01garbage" * 10, "invalid/truncated ONNX protobuf"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "Git LFS pointer"),
])
def test_broken_model_files(tmp_path, content, match):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        Recognizer(path)


def test_unknown_file_type_and_backend(tmp_path, recognizer):
    weird = tmp_path / "model.bin"
    weird.write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model file type"):
        Recognizer(weird)
    with pytest.raises(InputError, match="unknown backend"):
        Recognizer(recognizer.path, backend="tflite")


def test_bad_image_input(recognizer):
    with pytest.raises(InputError):
        recognizer.predict(np.zeros((3, 3, 3, 3), np.uint8))
    with pytest.raises(InputError):
        recognizer.classify(np.zeros((2, 64, 64), np.float32))


@pytest.mark.slow
def test_runtime_runs_without_torch(astronaut_path):
    """Import and run the device runtime in a process where torch cannot be imported at all."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any 'import torch' now raises ImportError
        from edgefer import Recognizer
        faces = Recognizer("microexpnet-oulu").predict({str(astronaut_path)!r})
        assert len(faces) == 1, faces
        print(faces[0].label)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in LABELS
