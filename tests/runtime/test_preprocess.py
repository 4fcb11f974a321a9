"""The authors' preprocessing: reading, validating, detecting and cropping faces."""

import numpy as np
import pytest

from edgefer.errors import InputError
from edgefer.preprocess import (
    FaceDetector,
    crop_face,
    crops_to_batch,
    faces_to_batch,
    read_image,
    to_uint8_image,
)


def test_astronaut_has_one_face(astronaut_bgr, reference):
    boxes = FaceDetector().detect(astronaut_bgr)
    assert len(boxes) == 1
    assert tuple(boxes[0]) == tuple(int(v) for v in reference["astronaut_box"])


def test_crop_matches_the_authors_pipeline(astronaut_bgr, reference):
    """Our crop is bit-identical to the one the reference script made with the authors' steps."""
    box = FaceDetector().detect(astronaut_bgr)[0]
    crop = crop_face(astronaut_bgr, box)
    assert crop.shape == (84, 84) and crop.dtype == np.float32
    np.testing.assert_array_equal(crop, reference["inputs"][reference["astronaut_index"]])


def test_faces_to_batch_without_detector_is_the_whole_image(astronaut_bgr):
    batch = faces_to_batch(astronaut_bgr, None)
    assert batch.boxes == [None] and batch.pixels.shape == (1, 1, 84, 84)


def test_image_without_face_gives_no_crops():
    flat = np.full((240, 320, 3), 127, np.uint8)
    batch = faces_to_batch(flat, FaceDetector())
    assert batch.boxes == [] and batch.pixels.shape == (0, 1, 84, 84)


def test_rgb_and_bgr_agree(astronaut_bgr):
    rgb = astronaut_bgr[:, :, ::-1]
    np.testing.assert_array_equal(to_uint8_image(rgb, "rgb"), astronaut_bgr)


@pytest.mark.parametrize("dtype,scale", [(np.uint16, 257), (np.float32, 1.0), (np.float64, 1.0)])
def test_other_dtypes_become_uint8(astronaut_bgr, dtype, scale):
    converted = to_uint8_image(astronaut_bgr.astype(dtype) * dtype(scale))
    np.testing.assert_array_equal(converted, astronaut_bgr)


def test_rgba_and_gray_inputs(astronaut_bgr):
    bgra = np.dstack([astronaut_bgr, np.full(astronaut_bgr.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(to_uint8_image(bgra), astronaut_bgr)
    gray = astronaut_bgr[:, :, 1]
    assert to_uint8_image(gray[:, :, None]).shape == gray.shape


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
    (np.full((8, 8), np.nan, np.float32), "NaN"),
    (np.zeros((8, 8), np.complex64), "dtype"),
    (b"not an array", "numpy array"),
])
def test_bad_arrays_are_refused(bad, match):
    with pytest.raises(InputError, match=match):
        to_uint8_image(bad)


def test_bad_files_are_refused(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(InputError, match="no such image file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="empty file"):
        read_image(empty)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(text)


def test_truncated_png_is_refused(tmp_path, astronaut_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(astronaut_path.read_bytes()[:2000])
    with pytest.raises(InputError, match="cut.png"):
        read_image(cut)


@pytest.mark.parametrize("shape", [(84, 84), (5, 84, 84), (5, 84, 84, 1), (5, 1, 84, 84)])
def test_crop_batches_of_every_layout(shape):
    crops = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    batch = crops_to_batch(crops)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    assert batch.shape == (1 if len(shape) == 2 else 5, 1, 84, 84)
    np.testing.assert_array_equal(batch.reshape(-1), crops.reshape(-1).astype(np.float32))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((84, 83), np.float32), "84x84"),
    (np.zeros((2, 3, 84, 84), np.float32), "84x84"),
    (np.array([[np.inf] * 84] * 84, np.float32), "NaN or infinite"),
    (np.zeros((84, 84), np.bool_), "dtype"),
])
def test_bad_crops_are_refused(bad, match):
    with pytest.raises(InputError, match=match):
        crops_to_batch(bad)


@pytest.mark.parametrize("count", [1, 2, 300])  # one dot, and the einsum sum of larger batches
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_bad_pixel_anywhere_in_a_batch_is_refused(count, bad):
    crops = np.random.default_rng(1).integers(0, 256, (count, 84, 84)).astype(np.float32)
    crops_to_batch(crops)  # the good batch passes
    for index in {0, count // 2, count - 1}:
        spoiled = crops.copy()
        spoiled[index, 83, 83 - index % 84] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            crops_to_batch(spoiled)
