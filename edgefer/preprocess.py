"""Image -> faces -> model-ready crops, following the authors' pipeline (docs/authors-facts.md).

Detection: OpenCV's Haar cascade ``haarcascade_frontalface_default.xml``, ``detectMultiScale``
with scale factor 1.3 and 5 minimum neighbours. Each face is cropped from the colour image,
resized to 256x256, cut to its central-lower 224x224 window (rows and columns 32..255),
resized to 84x84 and converted to gray; pixels stay in 0..255 as float32.
:func:`authors_crops` is that crop, defined once: inference, the 8 training windows and the
calibration crops all come from it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import InputError, InvalidFrameError
from edgefer.imagefile import check_pixel_count, opencv, read_image  # noqa: F401 - read_image re-exported

LOG = logging.getLogger(__name__)

#: The face is resized to CROP_SIZE x CROP_SIZE, then a WINDOW x WINDOW window is cut from it.
CROP_SIZE = 256
WINDOW = 224
#: The authors' 8 training windows, (row, col) in the 256x256 face (docs/authors-facts.md; their
#: Candidates/Preprocessing.py).
AUTHORS_OFFSETS: tuple[tuple[int, int], ...] = ((0, 0), (0, 5), (0, 32), (5, 0), (32, 0), (5, 5), (32, 32), (5, 32))
#: Inference takes the central-lower window, rows and columns 32..255 (their exampleUsage.py): training window 6.
INFERENCE_OFFSET = (32, 32)
HAAR_SCALE_FACTOR = 1.3
HAAR_MIN_NEIGHBORS = 5
#: Face boxes narrower or shorter than this (after clipping to the frame) are skipped.
MIN_FACE_SIZE = 16

Box = tuple[int, int, int, int]

_LAYOUTS = "HxW (gray), HxWx1, HxWx3 (BGR or RGB) or HxWx4 (BGRA or RGBA)"


def to_uint8_image(image: np.ndarray, color: str = "bgr", max_pixels: int | None = None) -> np.ndarray:
    """Validate an array frame and return it as contiguous uint8 BGR (HxWx3) or gray (HxW).

    Converted: HxWx1 -> gray; HxWx4 -> alpha dropped; uint16 -> the high byte (value >> 8);
    bool -> 0/255; other integers and floats are read on the 0..255 scale (floats rounded) and
    must lie in it (multiply a 0..1 float image by 255 first); non-contiguous views are copied.
    Refused with InvalidFrameError: None, non-arrays, empty arrays, other ranks or channel counts
    (HxWx2, CHW, NCHW, batches), NaN/inf, other dtypes, and frames over the pixel cap.
    ``color`` names the channel order of 3/4-channel input.
    """
    if image is None:
        raise InvalidFrameError("image is None (did cv2.imread fail?), expected a numpy array or a file path")
    if not isinstance(image, np.ndarray):
        raise InvalidFrameError(f"image must be a numpy array, a file path or encoded bytes, "
                                f"got {type(image).__name__}")
    if color not in ("bgr", "rgb"):
        raise InputError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    _check_layout(image.shape)
    check_pixel_count(image.shape[1], image.shape[0], "image", max_pixels, InvalidFrameError)
    image = np.ascontiguousarray(_to_uint8(image))
    cv2 = opencv()
    if image.ndim == 3 and image.shape[2] == 4:
        code = cv2.COLOR_BGRA2BGR if color == "bgr" else cv2.COLOR_RGBA2BGR
        image = cv2.cvtColor(image, code)
    elif image.ndim == 3 and color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return image


def _check_layout(shape: tuple[int, ...]) -> None:
    """Refuse shapes that are not one frame, with a hint for the usual mix-ups."""
    if len(shape) == 4:
        hint = "an NCHW batch" if shape[1] in (1, 3, 4) else "a batch"
        raise InvalidFrameError(f"image shape {shape} looks like {hint}; pass one {_LAYOUTS} frame "
                                "(predict_many takes several)")
    if len(shape) == 3 and shape[2] not in (3, 4):
        hint = ("CHW (channels first; transpose to HxWxC)" if shape[0] in (1, 3, 4)
                else f"{shape[2]} channels")
        raise InvalidFrameError(f"image shape {shape} is {hint}; expected {_LAYOUTS}")
    if len(shape) not in (2, 3):
        raise InvalidFrameError(f"image shape {shape} has {len(shape)} dimensions; expected {_LAYOUTS}")
    if shape[0] < 1 or shape[1] < 1:
        raise InvalidFrameError(f"image is empty (shape {shape})")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    kind = image.dtype.kind
    if image.dtype == np.uint8:
        return image
    if kind == "u" and image.dtype.itemsize == 2:  # 16-bit camera or PNG data
        return (image >> 8).astype(np.uint8)
    if kind == "b":
        return image.astype(np.uint8) * 255
    if kind == "f":
        if not np.isfinite(image).all():
            raise InvalidFrameError("image holds NaN or infinite values")
        image = np.rint(image)
    elif kind not in "ui":
        raise InvalidFrameError(f"image dtype {image.dtype} unsupported, expected uint8, uint16, "
                                "another integer or float type")
    low, high = image.min(), image.max()
    if low < 0 or high > 255:
        raise InvalidFrameError(f"{image.dtype} image values run from {low:g} to {high:g}, expected 0..255 "
                                "(multiply a 0..1 float image by 255)")
    return image.astype(np.uint8)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 BGR or gray -> uint8 gray."""
    return image if image.ndim == 2 else opencv().cvtColor(image, opencv().COLOR_BGR2GRAY)


class FaceDetector:
    """The authors' Haar cascade; one OpenCV classifier per thread, loaded on first use."""

    def __init__(self, cascade: str | os.PathLike | None = None,
                 scale_factor: float = HAAR_SCALE_FACTOR, min_neighbors: int = HAAR_MIN_NEIGHBORS):
        self.cascade = str(cascade) if cascade else _default_cascade()
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._local = threading.local()

    def _classifier(self):
        classifier = getattr(self._local, "classifier", None)
        if classifier is None:
            cv2 = opencv()
            classifier = cv2.CascadeClassifier(self.cascade)
            if classifier.empty():
                raise InputError(f"{self.cascade}: not a loadable Haar cascade")
            self._local.classifier = classifier
        return classifier

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes (x, y, w, h) left to right (by x, then y); [] when none is found."""
        gray = to_gray(image)
        found = self._classifier().detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors)
        return sorted(tuple(int(v) for v in box) for box in np.asarray(found).reshape(-1, 4))


def _default_cascade() -> str:
    cv2 = opencv()
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not path.is_file():
        raise InputError(f"{path}: Haar cascade missing; edgefer needs opencv-python-headless<5")
    return str(path)


def authors_crops(face: np.ndarray, offsets: tuple[tuple[int, int], ...] = (INFERENCE_OFFSET,),
                  size: int = 84) -> np.ndarray:
    """The authors' crop of one face (uint8 BGR or gray, any size) at each (row, col) offset:
    resize to 256x256, cut the 224x224 window, resize to ``size``, gray. (len(offsets), size, size) uint8.

    Gray comes last, as in the authors' inference script; their training faces were gray before the
    resize. Both steps are linear but round to uint8, so the order shows on colour faces only (on gray
    ones the two are bitwise equal). Measured on the bundled models (ONNX Runtime, AMD EPYC AVX2):
    the astronaut and the bundled calibration face, 8 windows each: pixels differ by at most 2 (mean
    0.25), logits by at most 0.11 (CK) / 0.56 (Oulu), no top-1 change; 64 colour-tinted synthetic faces
    x 8 windows: at most 2 (mean 0.16), top-1 changed on 6 (CK) and 5 (Oulu) of 512 crops. Gray last
    keeps inference bitwise equal to the authors' own pipeline (tests/reference, the astronaut's
    happy 0.526), so training and calibration follow it.
    """
    cv2 = opencv()
    face = cv2.resize(face, (CROP_SIZE, CROP_SIZE))
    crops = np.empty((len(offsets), size, size), np.uint8)
    for index, (row, col) in enumerate(offsets):
        window = np.ascontiguousarray(face[row:row + WINDOW, col:col + WINDOW])
        crops[index] = to_gray(cv2.resize(window, (size, size)))
    return crops


def face_region(image: np.ndarray, box: Box | None) -> np.ndarray:
    """The pixels of ``box`` (x, y, w, h) in ``image``, or the whole image when box is None."""
    if box is None:
        return image
    x, y, w, h = box
    return image[max(y, 0):y + h, max(x, 0):x + w]


def training_windows(image: np.ndarray, detector: FaceDetector | None, size: int = 84) -> tuple[np.ndarray, bool]:
    """The authors' 8 training windows (AUTHORS_OFFSETS) of the first face ``detector`` finds in ``image``, or
    of the whole image when it finds none (or there is no detector): (8, size, size) uint8, and whether a
    face was found."""
    boxes = detector.detect(image) if detector is not None else []
    return authors_crops(face_region(image, boxes[0] if boxes else None), AUTHORS_OFFSETS, size), bool(boxes)


def crop_face(image: np.ndarray, box: Box | None, size: int = 84) -> np.ndarray:
    """The authors' inference crop of one face (or of the whole image when box is None): size x size float32 gray."""
    return authors_crops(face_region(image, box), size=size)[0].astype(np.float32)


def ready_crop(image: np.ndarray, size: int = 84) -> np.ndarray:
    """A model-ready face crop of any size -> size x size float32 gray: resized only, no authors' crop
    (that one suits a detector's box, not a crop already cut to the face)."""
    gray = to_gray(image)
    if gray.shape != (size, size):
        shrink = gray.shape[0] > size or gray.shape[1] > size
        gray = opencv().resize(gray, (size, size), interpolation=opencv().INTER_AREA if shrink
                               else opencv().INTER_LINEAR)
    return gray.astype(np.float32)


@dataclass(frozen=True)
class SkippedBox:
    """A given face box that was not classified, and why: "empty" (width or height <= 0),
    "outside" (no pixel inside the frame) or "too-small" (under MIN_FACE_SIZE once clipped)."""

    box: Box
    reason: str


def clip_box(box: Box, shape: tuple[int, ...], min_size: int = MIN_FACE_SIZE) -> Box | SkippedBox:
    """``box`` (x, y, w, h) clipped to a frame of ``shape``, or the reason it cannot be used."""
    try:
        x, y, w, h = (int(round(float(v))) for v in box)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"face box {box!r} must be four finite numbers (x, y, w, h)") from None
    if w <= 0 or h <= 0:
        return SkippedBox((x, y, w, h), "empty")
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, shape[1]), min(y + h, shape[0])
    if right <= left or bottom <= top:
        return SkippedBox((x, y, w, h), "outside")
    if right - left < min_size or bottom - top < min_size:
        return SkippedBox((x, y, w, h), "too-small")
    return left, top, right - left, bottom - top


@dataclass(frozen=True)
class CropBatch:
    """Model-ready crops (N, 1, S, S) float32, the box each came from (None: whole image), and the
    given boxes that were skipped."""

    pixels: np.ndarray
    boxes: list[Box | None]
    skipped: tuple[SkippedBox, ...] = ()


def faces_to_batch(image: np.ndarray, detector: FaceDetector | None, size: int = 84,
                   boxes: list[Box] | None = None) -> CropBatch:
    """Crop each face of a validated uint8 image: the given ``boxes`` (clipped to the frame, unusable
    ones skipped), else the detector's boxes, else (detector None) the whole image as one face."""
    skipped: list[SkippedBox] = []
    if boxes is not None:
        kept: list[Box | None] = []
        for box in boxes:
            clipped = clip_box(box, image.shape)
            (skipped if isinstance(clipped, SkippedBox) else kept).append(clipped)
        for skip in skipped:
            LOG.info("face box %s skipped: %s", skip.box, skip.reason)
    else:
        kept = detector.detect(image) if detector is not None else [None]
    crops = [crop_face(image, box, size) for box in kept]
    pixels = np.stack(crops)[:, None] if crops else np.zeros((0, 1, size, size), np.float32)
    return CropBatch(pixels, kept, tuple(skipped))


def crops_to_batch(crops: np.ndarray, size: int = 84) -> np.ndarray:
    """Ready face crops -> contiguous float32 (N, 1, S, S); accepts (S,S), (N,S,S), (N,S,S,1), (N,1,S,S).

    float32 input costs one sum and a reshape (``Recognizer.classify`` checks one ready crop inline).
    """
    if not isinstance(crops, np.ndarray):
        raise InvalidFrameError(f"face crops must be a numpy array, got {type(crops).__name__}")
    shape = crops.shape
    if crops.ndim == 2:
        crops = crops.reshape(1, 1, *shape)
    elif crops.ndim == 3:
        crops = crops.reshape(shape[0], 1, shape[1], shape[2])
    elif crops.ndim == 4 and shape[-1] == 1 and shape[1] != 1:
        crops = crops.reshape(shape[0], 1, shape[1], shape[2])
    if crops.ndim != 4 or crops.shape[1:] != (1, size, size):
        raise InvalidFrameError(f"face crops must be {size}x{size} gray, as (S,S), (N,S,S), (N,S,S,1) "
                                f"or (N,1,S,S); got shape {shape}")
    if crops.dtype != np.float32:
        crops = _crops_as_float32(crops)
    crops = crops if crops.flags.c_contiguous else np.ascontiguousarray(crops)
    if not _finite_sum(crops):
        raise InvalidFrameError("face crops hold NaN or infinite values")
    return crops


def _crops_as_float32(crops: np.ndarray) -> np.ndarray:
    if crops.dtype.kind not in "uif":
        raise InvalidFrameError(f"face crops dtype {crops.dtype} unsupported, expected uint8 or float")
    with np.errstate(over="ignore", invalid="ignore"):  # too-large values become inf, refused after
        return crops.astype(np.float32)


#: Up to this many values the NaN check is one BLAS dot (one thread in OpenBLAS, the fastest sum there);
#: above it numpy's own single-threaded einsum sum. OpenBLAS runs its larger products multithreaded, and
#: its threads keep spinning afterwards on the cores the runtime's threads need: the block dot this
#: replaced halved ``Recognizer.classify``'s throughput at batch 256 (10,150 against 20,660 images/s,
#: OpenVINO, 2 threads, EPYC).
BLAS_DOT_MAX = 8192


def _finite_sum(crops: np.ndarray) -> bool:
    """Whether a contiguous float32 array holds no NaN/inf, from one sum of its values: far faster than
    isfinite over every pixel (this is the hot path of classify; numpy may warn about the bad values
    before the caller raises). Values near float32's maximum count as infinite too: no pixel is that
    large. Memory: nothing beyond a ones vector of ``BLAS_DOT_MAX`` values."""
    flat = crops.reshape(-1)  # a copy only for a non-contiguous (S, S) crop
    if flat.size <= BLAS_DOT_MAX:
        return math.isfinite(np.vdot(flat, _ones()[:flat.size]))
    return math.isfinite(np.einsum("i->", flat))


@functools.cache
def _ones() -> np.ndarray:
    return np.ones(BLAS_DOT_MAX, np.float32)
