"""One authors' crop: inference, the 8 training windows and the calibration crops come from it."""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.convert.calibration import BUILTIN_FACE, builtin_validation_crops
from edgefer.preprocess import AUTHORS_OFFSETS, INFERENCE_OFFSET, FaceDetector, crop_face, read_image
from edgefer.train.data.faces import training_crops


def test_training_window_32_32_is_the_inference_crop_bitwise(astronaut_path, astronaut_bgr):
    """On a colour photo, where the order of gray conversion and resizing shows."""
    detector = FaceDetector()
    windows, found = training_crops(astronaut_path, detector)
    box = detector.detect(astronaut_bgr)[0]
    inference = crop_face(astronaut_bgr, box)
    assert found and windows.dtype == np.uint8
    np.testing.assert_array_equal(windows[AUTHORS_OFFSETS.index(INFERENCE_OFFSET)], inference)
    assert not np.array_equal(windows[0], inference)


def test_training_windows_follow_the_authors_steps_in_colour(tmp_path):
    """A colour image with no face: each window is resize 256 -> 224 window -> resize 84 -> gray, gray last."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (180, 150, 3), dtype=np.uint8)
    path = tmp_path / "colour.png"
    cv2.imwrite(str(path), image)
    windows, found = training_crops(path, detector=None)
    face = cv2.resize(image, (256, 256))
    assert not found
    for window, (row, col) in zip(windows, AUTHORS_OFFSETS, strict=True):
        resized = cv2.resize(np.ascontiguousarray(face[row:row + 224, col:col + 224]), (84, 84))
        np.testing.assert_array_equal(window, cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY))


def test_calibration_windows_are_the_training_windows(tmp_path):
    """The parity gate's validation crops are the 8 training windows of the bundled face (and mirrors)."""
    validation = builtin_validation_crops()
    image = read_image(BUILTIN_FACE)
    x, y, w, h = FaceDetector().detect(image)[0]
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), image[y:y + h, x:x + w])
    windows, _ = training_crops(path, detector=None)
    np.testing.assert_array_equal(validation[0::2, 0], windows.astype(np.float32))
    np.testing.assert_array_equal(validation[1::2, 0], windows[:, :, ::-1].astype(np.float32))
