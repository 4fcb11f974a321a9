"""Image -> faces -> model-ready crops, following the authors' pipeline (FACTS.md).

Detection: OpenCV's Haar cascade ``haarcascade_frontalface_default.xml``, ``detectMultiScale``
with scale factor 1.3 and 5 minimum neighbours. Each face is cropped from the colour image,
resized to 256x256, cut to its central-lower 224x224 window (rows and columns 32..255),
resized to 84x84 and converted to gray; pixels stay in 0..255 as float32.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import InputError

CROP_SIZE = 256
CROP_OFFSET = 32
HAAR_SCALE_FACTOR = 1.3
HAAR_MIN_NEIGHBORS = 5
#: Images larger than this many pixels are refused (decompression bombs, runaway frames).
MAX_PIXELS = 1 << 27

Box = tuple[int, int, int, int]


@functools.cache
def _cv2():
    import cv2

    # Decoder warnings ("PNG input buffer is incomplete") would add lines to edgefer's own errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as 8-bit BGR (EXIF orientation applied, alpha dropped, 16-bit scaled)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise InputError(f"{path}: empty file, expected an image (PNG, JPEG, BMP, TIFF, WebP)")
    cv2 = _cv2()
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise InputError(f"{path}: cannot decode image ({str(err).strip().splitlines()[-1]})") from None
    if image is None:
        raise InputError(f"{path}: not a readable image, expected PNG, JPEG, BMP, TIFF or WebP")
    return image


def to_uint8_image(image: np.ndarray, color: str = "bgr") -> np.ndarray:
    """Validate an array image and return it as uint8 BGR (HxWx3) or gray (HxW).

    Accepts HxW, HxWx1, HxWx3 and HxWx4 arrays of uint8, uint16 (scaled down) or float
    (taken as 0..255, clipped). ``color`` names the channel order of 3/4-channel input.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array or a file path, got {type(image).__name__}")
    if color not in ("bgr", "rgb"):
        raise InputError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty (shape {image.shape})")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise InputError(f"image of {image.shape[1]}x{image.shape[0]} pixels exceeds the limit of {MAX_PIXELS}")
    image = _to_uint8(image)
    cv2 = _cv2()
    if image.ndim == 3 and image.shape[2] == 4:
        code = cv2.COLOR_BGRA2BGR if color == "bgr" else cv2.COLOR_RGBA2BGR
        image = cv2.cvtColor(image, code)
    elif image.ndim == 3 and color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise InputError("image holds NaN or infinite values")
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    raise InputError(f"image dtype {image.dtype} unsupported, expected uint8, uint16 or float")


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 BGR or gray -> uint8 gray."""
    return image if image.ndim == 2 else _cv2().cvtColor(image, _cv2().COLOR_BGR2GRAY)


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
            cv2 = _cv2()
            classifier = cv2.CascadeClassifier(self.cascade)
            if classifier.empty():
                raise InputError(f"{self.cascade}: not a loadable Haar cascade")
            self._local.classifier = classifier
        return classifier

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes (x, y, w, h) in the order OpenCV reports them; [] when none is found."""
        gray = to_gray(image)
        found = self._classifier().detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors)
        return [tuple(int(v) for v in box) for box in np.asarray(found).reshape(-1, 4)]


def _default_cascade() -> str:
    cv2 = _cv2()
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not path.is_file():
        raise InputError(f"{path}: Haar cascade missing; edgefer needs opencv-python-headless<5")
    return str(path)


def crop_face(image: np.ndarray, box: Box | None, size: int = 84) -> np.ndarray:
    """The authors' crop of one face (or of the whole image when box is None): size x size float32 gray."""
    cv2 = _cv2()
    if box is not None:
        x, y, w, h = box
        image = image[max(y, 0):y + h, max(x, 0):x + w]
    face = cv2.resize(image, (CROP_SIZE, CROP_SIZE))
    face = face[CROP_OFFSET:CROP_SIZE, CROP_OFFSET:CROP_SIZE]
    face = cv2.resize(face, (size, size))
    return to_gray(face).astype(np.float32)


@dataclass(frozen=True)
class CropBatch:
    """Model-ready crops (N, 1, S, S) float32 and the box each came from (None: whole image)."""

    pixels: np.ndarray
    boxes: list[Box | None]


def faces_to_batch(image: np.ndarray, detector: FaceDetector | None, size: int = 84) -> CropBatch:
    """Detect faces in a validated uint8 image and crop each; detector None means the image is one face."""
    boxes: list[Box | None] = detector.detect(image) if detector is not None else [None]
    crops = [crop_face(image, box, size) for box in boxes]
    pixels = np.stack(crops)[:, None] if crops else np.zeros((0, 1, size, size), np.float32)
    return CropBatch(pixels, boxes)


def crops_to_batch(crops: np.ndarray, size: int = 84) -> np.ndarray:
    """Ready face crops -> contiguous float32 (N, 1, S, S); accepts (S,S), (N,S,S), (N,S,S,1), (N,1,S,S).

    This is the hot path of ``Recognizer.classify``: float32 input costs one sum and a reshape.
    """
    if not isinstance(crops, np.ndarray):
        raise InputError(f"face crops must be a numpy array, got {type(crops).__name__}")
    shape = crops.shape
    if crops.ndim == 2:
        crops = crops.reshape(1, 1, *shape)
    elif crops.ndim == 3:
        crops = crops.reshape(shape[0], 1, shape[1], shape[2])
    elif crops.ndim == 4 and shape[-1] == 1 and shape[1] != 1:
        crops = crops.reshape(shape[0], 1, shape[1], shape[2])
    if crops.ndim != 4 or crops.shape[1:] != (1, size, size):
        raise InputError(f"face crops must be {size}x{size} gray, as (S,S), (N,S,S), (N,S,S,1) "
                         f"or (N,1,S,S); got shape {shape}")
    if crops.dtype != np.float32:
        crops = _crops_as_float32(crops)
    # One sum finds any NaN/inf far faster than isfinite over every pixel.
    elif not math.isfinite(float(crops.sum())):
        raise InputError("face crops hold NaN or infinite values")
    return crops if crops.flags.c_contiguous else np.ascontiguousarray(crops)


def _crops_as_float32(crops: np.ndarray) -> np.ndarray:
    if crops.dtype == np.bool_ or not np.issubdtype(crops.dtype, np.number):
        raise InputError(f"face crops dtype {crops.dtype} unsupported, expected uint8 or float")
    converted = crops.astype(np.float32)
    if np.issubdtype(crops.dtype, np.floating) and not math.isfinite(float(converted.sum())):
        raise InputError("face crops hold NaN or infinite values")
    return converted
