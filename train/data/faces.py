"""The authors' training preprocessing (FACTS.md): face crop -> 256x256 gray -> 8 windows of 224 -> 84x84.

The face is found as at inference (edgefer.preprocess.FaceDetector: the authors' Haar cascade,
first face); when none is found the whole image is the face. The 8 windows are the authors'
augmentation: (row, col) offsets (0,0) (0,5) (0,32) (5,0) (32,0) (5,5) (32,32) (5,32), as in their
Candidates/Preprocessing.py. Pixels stay whole numbers 0..255 (uint8), as decoded images give.
"""

from __future__ import annotations

import os

import numpy as np

from edgefer.preprocess import CROP_OFFSET, CROP_SIZE, FaceDetector, read_image, to_gray

#: (row, col) of each 224x224 training window in the 256x256 face.
AUTHORS_OFFSETS = ((0, 0), (0, 5), (0, 32), (5, 0), (32, 0), (5, 5), (32, 32), (5, 32))
WINDOW = CROP_SIZE - CROP_OFFSET
#: Bump when the output of this module changes: cached crops of another version are not reused.
PREPROCESS_VERSION = "authors-train-1"


def face_256(image: np.ndarray, detector: FaceDetector | None) -> tuple[np.ndarray, bool]:
    """The first detected face (or the whole image) as 256x256 uint8 gray, and whether a face was found."""
    import cv2

    boxes = detector.detect(image) if detector is not None else []
    if boxes:
        x, y, w, h = boxes[0]
        image = image[max(y, 0):y + h, max(x, 0):x + w]
    face = cv2.resize(to_gray(image), (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    return face, bool(boxes)


def authors_windows(face: np.ndarray, size: int = 84) -> np.ndarray:
    """The 8 training windows of a 256x256 gray face, each resized to size x size: (8, size, size) uint8."""
    import cv2

    windows = [face[r:r + WINDOW, c:c + WINDOW] for r, c in AUTHORS_OFFSETS]
    return np.stack([cv2.resize(np.ascontiguousarray(w), (size, size), interpolation=cv2.INTER_LINEAR)
                     for w in windows])


def training_crops(path: str | os.PathLike, detector: FaceDetector | None, size: int = 84) -> tuple[np.ndarray, bool]:
    """An image file -> its 8 training crops (8, size, size) uint8, and whether a face was detected."""
    face, found = face_256(read_image(path), detector)
    return authors_windows(face, size), found
