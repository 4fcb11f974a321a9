"""Face detectors on real faces: the astronaut photo and frames composed from it, box by box with IoU."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from composed_frames import face_box, frame, iou  # noqa: E402

from edgefer import Recognizer  # noqa: E402
from edgefer.detect import DETECTORS, detector_name, make_detector  # noqa: E402
from edgefer.detect.anchors import AnchorSpec, decode, ssd_anchors, weighted_nms  # noqa: E402
from edgefer.detect.blazeface import VARIANTS, fitted_framing  # noqa: E402
from edgefer.errors import InputError  # noqa: E402
from edgefer.preprocess import FaceDetector  # noqa: E402
from edgefer.zoo import MODELS_DIR  # noqa: E402

ONE_FACE = ((200, 90, 1.0),)
TWO_FACES = ((20, 100, 1.0), (370, 120, 1.1))


@pytest.fixture(scope="module")
def detectors():
    return {name: make_detector(name, threads=1) for name in DETECTORS}


def matched(found, expected) -> list[float]:
    """IoU of each expected box with the best found box."""
    return [max((iou(f, e) for f in found), default=0.0) for e in expected]


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("faces", [ONE_FACE, TWO_FACES, ((250, 60, 1.4),)], ids=["one", "two", "large"])
def test_every_detector_boxes_every_face(detectors, name, faces):
    found = detectors[name].detect(frame(faces=faces))
    expected = [face_box(x, y, s) for x, y, s in faces]
    assert len(found) == len(expected)
    assert min(matched(found, expected)) >= 0.75, (found, expected)
    assert found == sorted(found)


@pytest.mark.parametrize("name", DETECTORS)
def test_no_face_gives_no_box(detectors, name):
    assert detectors[name].detect(frame(faces=())) == []
    assert detectors[name].detect(np.full((200, 300), 30, np.uint8)) == []


def test_haar_exact_is_the_authors_cascade(detectors, astronaut_bgr, reference):
    assert detectors["haar-exact"].detect(astronaut_bgr) == FaceDetector().detect(astronaut_bgr)
    assert detectors["haar-exact"].detect(astronaut_bgr) == [tuple(int(v) for v in reference["astronaut_box"])]


@pytest.mark.parametrize("faces", [((250, 40, 1.4),), ((150, 60, 1.3),), ((300, 100, 1.5),), ((40, 20, 1.2),)])
def test_fast_haar_keeps_the_exact_boxes_on_faces_above_its_minimum(detectors, faces):
    """The minimum face size only drops pyramid levels: faces >= 1.5x that size keep their box."""
    image = frame(faces=faces)
    exact = detectors["haar-exact"].detect(image)
    assert exact and exact[0][2] >= 1.5 * detectors["haar"].min_size(image.shape)
    fast = detectors["haar"].detect(image)
    assert len(fast) == len(exact) and min(iou(a, b) for a, b in zip(fast, exact, strict=True)) >= 0.9


def test_fast_haar_minimum_follows_the_frame():
    haar = make_detector("haar")
    assert haar.min_size((480, 640)) == 72 and haar.min_size((1080, 1920, 3)) == 162
    assert make_detector("haar-exact").min_size((1080, 1920)) == 0


@pytest.mark.parametrize("name", ["blazeface", "blazeface-full"])
def test_blazeface_lands_on_haars_framing(detectors, name, astronaut_bgr):
    (haar,) = detectors["haar-exact"].detect(astronaut_bgr)
    (mapped,) = detectors[name].detect(astronaut_bgr)
    variant = "short" if name == "blazeface" else "full"
    from edgefer.detect.blazeface import BlazeFaceDetector

    (raw,) = BlazeFaceDetector(variant, framing="raw").detect(astronaut_bgr)
    assert iou(mapped, haar) >= 0.8 and iou(mapped, haar) > iou(raw, haar)
    assert mapped[2] == mapped[3]  # Haar's boxes are square, so are the mapped ones


def test_framing_fit_is_bundled_with_its_data():
    import json

    data = json.loads((MODELS_DIR / "blazeface-framing.json").read_text())
    for variant in ("short", "full"):
        fit = fitted_framing(variant)
        assert 0.8 < fit.scale < 1.1 and abs(fit.dy) < 0.2  # Haar's box sits higher than BlazeFace's
        assert len(data["pairs"][variant]) == data["fits"][variant]["faces"] >= 40
        assert data["agreement"][variant]["mean_iou"] > data["agreement"][variant]["mean_iou_unmapped"]


def test_bundled_models_match_their_recorded_sha256():
    readme = (MODELS_DIR / "README-blazeface.md").read_text()
    for variant in VARIANTS.values():
        recorded = re.search(rf"\| {re.escape(variant.file)} \| ([0-9a-f]{{64}}) \|", readme).group(1)
        assert hashlib.sha256((MODELS_DIR / variant.file).read_bytes()).hexdigest() == recorded
    assert "Apache License" in (MODELS_DIR / "LICENSE-blazeface").read_text()


def test_anchor_grids_match_the_model_outputs():
    assert ssd_anchors(VARIANTS["short"].anchors).shape == (896, 2)
    assert ssd_anchors(VARIANTS["full"].anchors).shape == (2304, 2)
    anchors = ssd_anchors(AnchorSpec(16, (8,), False))
    np.testing.assert_allclose(anchors, [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])


def test_decode_and_weighted_nms_blend_overlapping_boxes():
    anchors = np.array([[0.5, 0.5], [0.5, 0.5], [0.1, 0.1]], np.float32)
    raw = np.zeros((1, 3, 16), np.float32)
    raw[0, :, 2:4] = 32  # 32 px wide and high on a 128 input: a quarter of it
    raw[0, 1, 0] = 4  # the second box is 4 px to the right
    scores = np.array([3.0, 1.0, -5.0], np.float32)  # the third is below 0.5 once through the sigmoid
    boxes, probs = decode(raw, scores, anchors, 128, 0.5)
    assert len(boxes) == 2
    np.testing.assert_allclose(boxes[0], [0.375, 0.375, 0.625, 0.625], atol=1e-6)
    ((box, score),) = weighted_nms(boxes, probs)
    weights = probs / probs.sum()
    np.testing.assert_allclose(box[0], 0.375 + weights[1] * 4 / 128, atol=1e-6)
    assert score == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_recognizer_takes_names_objects_and_boxes(astronaut_bgr, reference):
    class Fixed:
        def detect(self, image):
            return [tuple(int(v) for v in reference["astronaut_box"])]

    by_object = Recognizer("microexpnet-ck", detector=Fixed())
    by_name = Recognizer("microexpnet-ck", detector="haar-exact")
    assert by_object.detector_name == "Fixed" and by_name.detector_name == "haar-exact"
    assert by_object.predict(astronaut_bgr) == by_name.predict(astronaut_bgr)
    assert by_name.predict(astronaut_bgr, boxes=[reference["astronaut_box"]]) == by_name.predict(astronaut_bgr)
    assert Recognizer("microexpnet-ck", detector=FaceDetector()).predict(astronaut_bgr) == by_name.predict(
        astronaut_bgr)
    default = Recognizer("microexpnet-ck")
    assert default.detector_name == "haar-exact"  # images: the authors' pipeline
    assert detector_name(default.stream_detector) == "blazeface"  # streams: real time
    assert Recognizer("microexpnet-ck", detector="haar").stream_detector.name == "haar"  # a choice holds for both


def test_unknown_detectors_are_refused():
    with pytest.raises(InputError, match="unknown detector 'yolo'"):
        make_detector("yolo")
    with pytest.raises(InputError, match="no detect"):
        make_detector(object())


def test_min_face_is_the_fast_haars_alone():
    assert make_detector("haar", min_face=0.1).min_face == 0.1
    for other in ("blazeface", "haar-exact", None):
        with pytest.raises(InputError, match="min_face .* applies to the 'haar' detector, not"):
            make_detector(other, min_face=0.1)


def test_threads_bound_opencv_and_the_detectors_too():
    """Recognizer(threads=N) caps OpenCV's process-wide pool (the Haar cascades and crops run there) and
    BlazeFace's ONNX Runtime session."""
    import cv2

    before = cv2.getNumThreads()
    try:
        Recognizer("microexpnet-ck", threads=1, detector="haar")
        assert cv2.getNumThreads() == 1
        blaze = Recognizer("microexpnet-ck", threads=2, detector="blazeface").detector
        assert cv2.getNumThreads() == 2
        assert blaze._session.get_session_options().intra_op_num_threads == 2
    finally:
        cv2.setNumThreads(before)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_blazeface_on_openvino_gives_the_onnxruntime_boxes(variant, astronaut_bgr):
    """The same BlazeFace file on OpenVINO (float32 pinned): the same boxes, frame after frame, as on ONNX Runtime."""
    pytest.importorskip("openvino")
    from edgefer.detect.blazeface import BlazeFaceDetector

    on_onnxruntime = BlazeFaceDetector(variant, threads=1)
    on_openvino = BlazeFaceDetector(variant, threads=1, runtime="openvino")
    assert (on_onnxruntime.runtime, on_openvino.runtime) == ("onnxruntime", "openvino")
    frames = [astronaut_bgr, astronaut_bgr[:, ::-1].copy(), frame(faces=ONE_FACE), frame(faces=TWO_FACES),
              frame(faces=())]
    boxes = [on_openvino.detect(image) for image in frames]
    assert boxes == [on_onnxruntime.detect(image) for image in frames]
    assert [len(found) for found in boxes] == [1, 1, 1, 2, 0]
    assert [on_openvino.detect(image) for image in frames] == boxes  # the request is reused cleanly
    with pytest.raises(InputError, match="BlazeFace runtime 'tflite' unknown"):
        BlazeFaceDetector(variant, runtime="tflite")


def test_a_recognizer_on_openvino_runs_blazeface_there_too(microexpnet_ir, astronaut_bgr):
    on_openvino = Recognizer(microexpnet_ir, detector="blazeface", threads=1)
    assert on_openvino.detector.runtime == on_openvino.stream_detector.runtime == "openvino"
    assert Recognizer("microexpnet-ck", detector="blazeface").detector.runtime == "onnxruntime"
    faces = on_openvino.predict(astronaut_bgr)
    reference = Recognizer(microexpnet_ir, detector=make_detector("blazeface", threads=1)).predict(astronaut_bgr)
    assert [f.box for f in faces] == [f.box for f in reference] and len(faces) == 1
    assert faces[0].scores == reference[0].scores
