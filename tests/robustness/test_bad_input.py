"""Bad input never crashes: arrays, boxes and image files thrown at the Recognizer and the CLI.

Each gets a correct result or a typed error naming what was wrong; the CLI answers with exit 2 and one
line. Bad files are written by hand in tmp_path.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib

import cv2
import numpy as np
import pytest
from hostile import encode, png_chunk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgefer import Recognizer
from edgefer.errors import InputError, InvalidFrameError
from edgefer.imagefile import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, read_header
from edgefer.preprocess import SkippedBox, clip_box, faces_to_batch, read_image
from edgefer.runtime.recognizer import Face


def top(faces: list[Face]) -> list[tuple]:
    return [(face.box, face.label) for face in faces]


# --- arrays: whatever the shape, dtype or values, a list of faces or an InputError -----------------

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.int64, np.uint32, np.float16,
                          np.float32, np.float64, np.bool_, np.complex64, ">u2", "<f8"])


@st.composite
def frames(draw) -> np.ndarray:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=48))
    dtype = np.dtype(draw(DTYPES))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=8 * min(dtype.itemsize, 4))
    else:
        elements = None
    image = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()) and image.ndim >= 2 and image.shape[1] > 1:
        image = image[:, ::-2]  # a non-contiguous view
    return image


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=frames(), detect=st.booleans(), color=st.sampled_from(["bgr", "rgb"]))
def test_any_array_gives_faces_or_an_invalid_frame_error(recognizer, image, detect, color):
    try:
        faces = recognizer.predict(image, detect=detect, color=color)
    except InvalidFrameError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert isinstance(faces, list) and all(isinstance(face, Face) for face in faces)
    assert not detect or all(face.box is not None for face in faces)
    assert detect or len(faces) == 1


CROP_SHAPES = st.one_of(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6),
                        st.sampled_from([(84, 84), (3, 84, 84), (2, 84, 84, 1), (2, 1, 84, 84), (0, 84, 84),
                                         (84, 83), (1, 3, 84, 84), (2, 2, 84, 84, 1)]))


@settings(max_examples=150, deadline=None)
@given(crops=hnp.arrays(DTYPES, CROP_SHAPES))
def test_any_crop_array_gives_probabilities_or_an_invalid_frame_error(recognizer, crops):
    try:
        probs = recognizer.classify(crops)
    except InvalidFrameError:
        return
    assert probs.ndim == 2 and probs.shape[1] == len(recognizer.labels) and np.isfinite(probs).all()


def test_non_arrays_are_invalid_frames(recognizer):
    with pytest.raises(InvalidFrameError, match="None .*cv2.imread"):
        recognizer.predict(None)
    with pytest.raises(InvalidFrameError, match="got list"):
        recognizer.predict([[0, 1], [2, 3]])
    with pytest.raises(InputError, match="color"):
        recognizer.predict(np.zeros((8, 8, 3), np.uint8), color="hsv")


@pytest.mark.parametrize("frame,match", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((0, 5), np.uint8), "empty"),
    (np.zeros((60, 60, 2), np.uint8), "2 channels"),
    (np.zeros((1, 3, 60, 60), np.float32), "NCHW"),
    (np.zeros((3, 60, 60), np.uint8), "CHW"),
    (np.zeros((2, 60, 60, 3), np.uint8), "batch"),
    (np.zeros(5, np.uint8), "1 dimensions"),
    (np.full((60, 60, 3), np.nan), "NaN"),
    (np.full((60, 60), -np.inf, np.float32), "NaN or infinite"),
    (np.full((60, 60), 300.0), "values run from 300 to 300"),
    (np.full((60, 60), -4, np.int32), "0..255"),
    (np.zeros((60, 60), np.complex64), "dtype complex64"),
    (np.zeros((60, 60), "datetime64[s]"), "dtype"),
    (np.zeros((60, 60), object), "dtype object"),
])
def test_bad_frames_are_refused_naming_the_problem(recognizer, frame, match):
    with pytest.raises(InvalidFrameError, match=match):
        recognizer.predict(frame)


def test_converted_frames_give_the_bgr_result(recognizer, astronaut_bgr):
    """uint16, float 0..255, non-contiguous, gray, BGRA and RGBA are converted (documented in to_uint8_image)."""
    expected = recognizer.predict(astronaut_bgr)
    assert len(expected) == 1
    bgra = np.dstack([astronaut_bgr, np.full(astronaut_bgr.shape[:2], 255, np.uint8)])
    wide = np.zeros((512, 1024, 3), np.uint8)
    wide[:, ::2] = astronaut_bgr
    for frame, color in [(astronaut_bgr.astype(np.uint16) * 257, "bgr"), (astronaut_bgr.astype(np.float64), "bgr"),
                         (astronaut_bgr.astype(np.float32) + 0.3, "bgr"), (wide[:, ::2], "bgr"),
                         (bgra, "bgr"), (bgra[:, :, [2, 1, 0, 3]], "rgb"), (astronaut_bgr[:, :, ::-1], "rgb")]:
        assert not frame.flags.c_contiguous or frame.dtype != np.uint8 or frame.shape[2] == 4
        assert recognizer.predict(frame, color=color) == expected
    gray = recognizer.predict(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))
    assert top(gray) == top(expected)


def test_tiny_and_huge_frames(recognizer, monkeypatch):
    assert recognizer.predict(np.zeros((1, 1), np.uint8)) == []
    assert len(recognizer.predict(np.zeros((1, 1, 3), np.uint8), detect=False)) == 1
    huge = np.broadcast_to(np.uint8(90), (10_000, 10_000))  # 100 MP, no memory behind it
    with pytest.raises(InvalidFrameError, match=f"10000x10000 .*limit of {DEFAULT_MAX_PIXELS:,} pixels"):
        recognizer.predict(huge)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(InvalidFrameError, match=MAX_PIXELS_ENV):
        recognizer.predict(np.zeros((40, 40), np.uint8))
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(InputError, match=f"{MAX_PIXELS_ENV} must be a positive whole number"):
        recognizer.predict(np.zeros((40, 40), np.uint8))
    monkeypatch.delenv(MAX_PIXELS_ENV)
    roomy = Recognizer("microexpnet-ck", max_pixels=100_000_000)
    (face,) = roomy.predict(huge, detect=False)
    assert face.box is None


# --- faces and boxes -------------------------------------------------------------------------------

def test_no_face_is_an_empty_list(recognizer):
    for frame in (np.full((300, 300, 3), 90, np.uint8), np.random.default_rng(0).integers(0, 256, (240, 320, 3),
                                                                                            dtype=np.uint8)):
        assert recognizer.predict(frame) == []


def test_three_faces_come_left_to_right(recognizer, astronaut_bgr):
    mirrored = astronaut_bgr[:, ::-1]
    row = np.hstack([mirrored, astronaut_bgr, mirrored])
    faces = recognizer.predict(row)
    assert len(faces) == 3
    xs = [face.box[0] for face in faces]
    assert xs == sorted(xs) and xs[0] < 512 <= xs[1] < 1024 <= xs[2]
    (single,) = recognizer.predict(astronaut_bgr)
    # The detector's scale pyramid depends on the frame size: the same face, boxed a few pixels apart.
    assert np.abs(np.subtract(faces[1].box, (single.box[0] + 512, *single.box[1:]))).max() <= 6


def test_given_boxes_are_clipped_or_skipped_with_a_reason(recognizer, astronaut_bgr, caplog):
    (detected,) = recognizer.predict(astronaut_bgr)
    x, y, w, h = detected.box
    boxes = [detected.box, (-50, -50, x + w + 50, y + h + 50), (x, y, 0, h), (600, 600, 80, 80),
             (510, 510, 40, 40), (x, y, -w, h)]
    with caplog.at_level("INFO", logger="edgefer.preprocess"):
        faces = recognizer.predict(astronaut_bgr, boxes=boxes)
    assert [face.box for face in faces] == [detected.box, (0, 0, x + w, y + h)]
    # the same face: the same label, and scores equal up to float32 rounding (one crop takes classify's
    # one-row softmax, a batch of two the batch softmax)
    assert faces[0].label == detected.label
    np.testing.assert_allclose(list(faces[0].scores.values()), list(detected.scores.values()), rtol=1e-6, atol=1e-7)
    assert "empty" in caplog.text and "outside" in caplog.text and "too-small" in caplog.text
    batch = faces_to_batch(astronaut_bgr, None, boxes=boxes)
    assert [s.reason for s in batch.skipped] == ["empty", "outside", "too-small", "empty"]
    assert recognizer.predict(astronaut_bgr, boxes=[]) == []


@pytest.mark.parametrize("box", [(1, 2, 3), ("a", 0, 10, 10), (float("nan"), 0, 10, 10), (0, 0, float("inf"), 9)])
def test_malformed_boxes_are_input_errors(box):
    with pytest.raises(InputError, match="four finite numbers"):
        clip_box(box, (100, 100, 3))


def test_clip_box_keeps_inside_boxes():
    assert clip_box((10, 20, 30, 40), (100, 100)) == (10, 20, 30, 40)
    assert clip_box((90, 90, 30, 30), (100, 100)) == SkippedBox((90, 90, 30, 30), "too-small")
    assert clip_box((80.4, 70.6, 30, 30), (100, 100)) == (80, 71, 20, 29)


# --- image files -----------------------------------------------------------------------------------

def png_bomb(side: int = 30_000) -> bytes:
    """A valid side x side 8-bit gray PNG of zeros (900 MP, 0.9 MB): the deflate stream of 1,000 rows,
    flushed to a byte boundary, repeated."""
    rows = bytes((side + 1) * 1000)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(rows) + deflate.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(side // 1000):
        adler = zlib.adler32(rows, adler)
    stream = (b"\x78\xda" + block * (side // 1000) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
              + struct.pack(">I", adler))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", stream)
            + png_chunk(b"IEND", b""))


def exif_jpeg(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``image`` with an APP1 EXIF segment holding only the Orientation tag (0x0112)."""
    tiff = (b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))
    body = b"Exif\x00\x00" + tiff
    jpeg = encode(image, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 100)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, astronaut_bgr):
    folder = tmp_path_factory.mktemp("bad files")
    jpeg = encode(astronaut_bgr, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95)
    png = encode(astronaut_bgr, ".png")
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0xFF
    files = {
        "truncated.jpg": jpeg[: len(jpeg) * 6 // 10],
        "no-end-marker.jpg": jpeg[:-2],
        "header-only.jpg": jpeg[:400],
        "corrupt.png": bytes(flipped),
        "cut.png": png[: len(png) // 2],
        "header-cut.png": png[:20],
        "animation.gif": b"GIF89a" + bytes(40),
        "notes.png": b"hello, not an image",
        "empty.jpg": b"",
        "bomb.png": png_bomb(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "folder.png").mkdir()
    return folder


@pytest.mark.parametrize("name,match", [
    ("truncated.jpg", "truncated JPEG"),
    ("no-end-marker.jpg", "truncated JPEG"),
    ("header-only.jpg", "truncated JPEG"),
    ("corrupt.png", "corrupt PNG: CRC mismatch in the 'IDAT' chunk"),
    ("cut.png", "truncated PNG"),
    ("header-cut.png", "broken or truncated PNG header"),
    ("animation.gif", "not a readable image"),
    ("notes.png", "not a readable image"),
    ("empty.jpg", "empty file"),
    ("bomb.png", r"30000x30000 image \(900.0 MP\) exceeds the limit"),
    ("folder.png", "is a folder"),
    ("missing.png", "no such image file"),
])
def test_bad_files_are_input_errors_naming_the_file(recognizer, bad_files, name, match):
    path = bad_files / name
    with pytest.raises(InputError, match=match) as err:
        recognizer.predict(path)
    assert str(err.value).startswith(f"{path}: ")
    if path.is_file():
        with pytest.raises(InputError, match=match):
            recognizer.predict(path.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["truncated.jpg", "corrupt.png", "bomb.png", "animation.gif", "folder.png"])
def test_cli_bad_file_is_exit_2_and_one_line(edgefer, bad_files, name):
    out = edgefer("predict", bad_files / name)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgefer: error: ") and name in lines[0], out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.slow
def test_bomb_is_refused_from_the_header_with_bounded_memory(bad_files):
    """Decoding the bomb would take 2.7 GB (BGR); refusing it from IHDR keeps the process small."""
    code = textwrap.dedent(f"""
        import resource
        from edgefer import Recognizer
        from edgefer.errors import InputError
        recognizer = Recognizer("microexpnet-ck")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            recognizer.predict({str(bad_files / "bomb.png")!r})
        except InputError as err:
            print(err)
        print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    message, rss = out.stdout.strip().splitlines()
    assert "exceeds the limit" in message
    before_kib, after_kib = map(int, rss.split())
    assert after_kib - before_kib < 64 * 1024, f"peak RSS grew by {(after_kib - before_kib) // 1024} MiB"


@pytest.mark.slow
def test_pixel_cap_is_configurable_for_files(edgefer, bad_files, tmp_path, astronaut_path, monkeypatch):
    assert read_header((bad_files / "bomb.png").read_bytes()).width == 30_000
    with pytest.raises(InputError, match="512x512 .*limit of 1,000 pixels"):
        read_image(astronaut_path, max_pixels=1000)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    out = edgefer("predict", astronaut_path)
    assert out.returncode == 2 and MAX_PIXELS_ENV in out.stderr


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tiff", ".webp"])
def test_headers_give_the_size_of_every_supported_format(astronaut_bgr, ext):
    frame = np.ascontiguousarray(astronaut_bgr[:300, :200])
    header = read_header(encode(frame, ext))
    assert (header.width, header.height, header.problem) == (200, 300, None)


def test_rgba_16bit_and_gray_files_give_the_8bit_result(recognizer, tmp_path, astronaut_bgr):
    expected = top(recognizer.predict(astronaut_bgr))
    variants = {
        "rgba.png": np.dstack([astronaut_bgr, np.full(astronaut_bgr.shape[:2], 200, np.uint8)]),
        "deep.png": astronaut_bgr.astype(np.uint16) * 257,
        "deep.tiff": astronaut_bgr.astype(np.uint16) * 257,
    }
    for name, image in variants.items():
        (tmp_path / name).write_bytes(encode(image, name[name.index("."):]))
        assert top(recognizer.predict(tmp_path / name)) == expected, name
    gray = tmp_path / "gray.png"
    gray.write_bytes(encode(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY), ".png"))
    assert [f.box for f in recognizer.predict(gray)] == [box for box, _ in expected]


@pytest.mark.slow
def test_non_ascii_path_loads_from_python_and_the_cli(edgefer, recognizer, tmp_path, astronaut_bgr):
    path = tmp_path / "daten" / "ü-gesicht 表情.jpg"
    path.parent.mkdir()
    path.write_bytes(encode(astronaut_bgr, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95))
    faces = recognizer.predict(path)
    assert len(faces) == 1 and faces == recognizer.predict(path.read_bytes())
    out = edgefer("predict", "--json", "--detector", "haar-exact", path)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["image"] == str(path) and result["faces"][0]["label"] == faces[0].label


# Orientation tag -> how the stored pixels are turned from the upright image.
STORED = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_COUNTERCLOCKWISE, 8: cv2.ROTATE_90_CLOCKWISE}


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_rotated_portrait_gives_the_upright_result(recognizer, tmp_path, astronaut_bgr, orientation):
    """The stored pixels, turned upright by hand, give exactly what the EXIF file gives by path and by bytes."""
    portrait = np.ascontiguousarray(astronaut_bgr[:, 64:448])  # 512 x 384
    stored = encode(cv2.rotate(portrait, STORED[orientation]), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 100)
    rotated = tmp_path / f"rotated-{orientation}.jpg"
    rotated.write_bytes(exif_jpeg(cv2.rotate(portrait, STORED[orientation]), orientation))
    undo = {cv2.ROTATE_180: cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE: cv2.ROTATE_90_CLOCKWISE,
            cv2.ROTATE_90_CLOCKWISE: cv2.ROTATE_90_COUNTERCLOCKWISE}[STORED[orientation]]
    by_hand = cv2.rotate(cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR), undo)

    np.testing.assert_array_equal(read_image(rotated), by_hand)
    from_path = recognizer.predict(rotated)
    assert len(from_path) == 1
    assert from_path == recognizer.predict(rotated.read_bytes()) == recognizer.predict(by_hand)
    (upright,) = recognizer.predict(portrait)  # the lossless original: same face, same emotion
    assert from_path[0].label == upright.label
    assert np.abs(np.subtract(from_path[0].box, upright.box)).max() <= 4


def test_exif_orientation_agrees_with_pillow(tmp_path, astronaut_bgr):
    image_ops = pytest.importorskip("PIL.ImageOps", reason="Pillow is not installed (not a dependency)")
    from PIL import Image

    portrait = np.ascontiguousarray(astronaut_bgr[:, 64:448])
    path = tmp_path / "rotated.jpg"
    path.write_bytes(exif_jpeg(cv2.rotate(portrait, STORED[6]), 6))
    with Image.open(path) as opened:
        by_pillow = np.asarray(image_ops.exif_transpose(opened).convert("RGB"))[:, :, ::-1]
    ours = read_image(path)
    assert ours.shape == by_pillow.shape
    assert np.abs(ours.astype(int) - by_pillow).max() <= 2  # two JPEG decoders, same orientation
