"""Real face crops for INT8 calibration and for the parity gate.

From a folder of face images (``--calib DIR``): every face the authors' pipeline finds, or the
whole image when it finds none (the authors' own fallback, right for ready-cropped faces).
Without a folder: crops of the bundled real photo (the face of tests/fixtures' NASA portrait
ships inside the package as ``edgefer/models/calibration-face.png``): the authors' 8 training
windows and their mirror images to validate, and detector-like jitter of those to calibrate.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgefer.errors import InputError
from edgefer.imagefile import IMAGE_SUFFIXES
from edgefer.preprocess import (
    AUTHORS_OFFSETS,
    FaceDetector,
    authors_crops,
    faces_to_batch,
    read_image,
    training_windows,
)
from edgefer.zoo import MODELS_DIR

BUILTIN_FACE = MODELS_DIR / "calibration-face.png"


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted; InputError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: calibration folder not found, expected a folder of face images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: no images found (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def crops_from_folder(folder: str | os.PathLike, limit: int = 512, size: int = 84) -> np.ndarray:
    """Up to ``limit`` face crops (N, 1, S, S) float32 from the images in ``folder``."""
    detector = FaceDetector()
    crops: list[np.ndarray] = []
    for path in image_files(folder):
        image = read_image(path)
        batch = faces_to_batch(image, detector, size)
        if not batch.boxes:
            batch = faces_to_batch(image, None, size)
        crops.extend(batch.pixels)
        if len(crops) >= limit:
            break
    return np.stack(crops[:limit])


def labelled_images(folder: str | os.PathLike) -> list[tuple[Path, int]] | None:
    """(image, label index) for a folder-per-class layout (every sub-folder named as a label or one of its
    synonyms, e.g. ``happy/`` or ``happiness/``: ``edgefer.spec.label_index``, the rule training datasets
    use too); None when ``folder`` is not laid out so (then its images are unlabelled faces)."""
    from edgefer.spec import label_index

    classes = sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))
    labels = [label_index(c.name) for c in classes]
    if not classes or None in labels:
        return None
    items = [(p, label) for c, label in zip(classes, labels, strict=True) for p in sorted(c.rglob("*"))
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return items or None


def labelled_crops(items: list[tuple[Path, int]], size: int = 84) -> tuple[np.ndarray, np.ndarray]:
    """One crop per image as ``Recognizer.predict`` takes it (first face, or the whole image when the
    detector finds none), and the labels: (N, 1, S, S) float32, (N,) int64."""
    detector = FaceDetector()
    crops = []
    for path, _ in items:
        image = read_image(path)
        batch = faces_to_batch(image, detector, size)
        if not batch.boxes:
            batch = faces_to_batch(image, None, size)
        crops.append(batch.pixels[0])
    return np.stack(crops).astype(np.float32), np.asarray([label for _, label in items], dtype=np.int64)


def labelled_split(folder: str | os.PathLike, limit: int = 2048
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """For a labelled folder: crops to calibrate on, and held-out crops with their labels (every fourth
    image, as :func:`calibration_and_validation` holds out); None for an unlabelled folder."""
    items = labelled_images(folder)
    if items is None:
        return None
    crops, labels = labelled_crops(items[:limit])
    held_out = np.zeros(len(crops), bool)
    held_out[::4] = True
    if len(crops) < 8:
        return crops, crops, labels
    return crops[~held_out], crops[held_out], labels[held_out]


def builtin_crops(count: int = 128, seed: int = 0, size: int = 84) -> np.ndarray:
    """``count`` varied crops of the bundled real face, deterministic for a seed.

    Each crop moves and scales the detected box a little (as a detector does from frame to
    frame), takes one of the authors' 8 training windows, may mirror the face, and varies
    exposure; pixels are whole numbers 0..255, as decoded images give.
    """
    image = read_image(BUILTIN_FACE)
    boxes = FaceDetector().detect(image)
    x, y, w, h = boxes[0] if boxes else (0, 0, image.shape[1], image.shape[0])
    rng = np.random.default_rng(seed)
    crops = []
    for index in range(count):
        scale = rng.uniform(0.9, 1.1)
        dx, dy = rng.uniform(-0.06, 0.06, 2) * w
        side = int(round(w * scale))
        left = int(np.clip(x + dx - (side - w) / 2, 0, image.shape[1] - side))
        top = int(np.clip(y + dy - (side - h) / 2, 0, image.shape[0] - side))
        offset = AUTHORS_OFFSETS[index % len(AUTHORS_OFFSETS)]
        crop = authors_crops(image[top:top + side, left:left + side], (offset,), size)[0].astype(np.float32)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        crops.append(np.clip(np.rint(crop * gain + bias), 0, 255))
    return np.stack(crops).astype(np.float32)[:, None]


def builtin_validation_crops(size: int = 84) -> np.ndarray:
    """The authors' 8 training windows of the bundled face, and their mirror images (16 crops)."""
    windows, _ = training_windows(read_image(BUILTIN_FACE), FaceDetector(), size)
    crops = []
    for crop in windows:
        crops += [crop, crop[:, ::-1]]
    return np.stack(crops).astype(np.float32)[:, None]


def calibration_and_validation(folder: str | os.PathLike | None, calibration: int = 256,
                               validation: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Crops to calibrate INT8 on, and held-out crops for the parity gate.

    From a folder: every fourth crop is held out for validation (all crops serve both when there
    are fewer than 8). Built in: jittered crops of the bundled face to calibrate, and its 16
    unaltered authors' windows to validate.
    """
    if folder is None:
        return builtin_crops(calibration, seed=0), builtin_validation_crops()
    crops = crops_from_folder(folder, calibration + validation)
    if len(crops) < 8:
        return crops, crops
    held_out = np.zeros(len(crops), bool)
    held_out[::4] = True
    return crops[~held_out], crops[held_out]


def model_input(crops: np.ndarray, channels: int, size: int) -> np.ndarray:
    """84x84 gray crops (N, 1, 84, 84) -> the model's input geometry (resized, gray repeated over the
    channels): the teacher's 299x299x3 from the students' crops, for calibration, parity and accuracy."""
    if crops.shape[1:] == (channels, size, size):
        return crops
    import cv2

    resized = np.stack([cv2.resize(c[0], (size, size)) for c in crops])[:, None]
    return np.ascontiguousarray(np.repeat(resized, channels, axis=1), dtype=np.float32)
