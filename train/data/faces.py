"""The authors' training preprocessing (docs/authors-facts.md): face -> 8 windows of 224 in its 256x256 resize
-> 84x84 gray.

The face is found as at inference (edgefer.preprocess.FaceDetector: the authors' Haar cascade,
first face); when none is found the whole image is the face. The 8 windows are the authors'
augmentation (edgefer.preprocess.AUTHORS_OFFSETS, as in their Candidates/Preprocessing.py), cut by
the one authors' crop (edgefer.preprocess.authors_crops), so window (32, 32) is the inference crop
bit for bit. Pixels stay whole numbers 0..255 (uint8), as decoded images give.
"""

from __future__ import annotations

import os

import numpy as np

from edgefer.preprocess import AUTHORS_OFFSETS, FaceDetector, read_image, training_windows

#: Bump when the output of this module changes: cached crops of another version are not reused.
#: 2: gray conversion after the resizes, as at inference (changes colour images only).
PREPROCESS_VERSION = "authors-train-2"

__all__ = ["AUTHORS_OFFSETS", "PREPROCESS_VERSION", "training_crops"]


def training_crops(path: str | os.PathLike, detector: FaceDetector | None, size: int = 84) -> tuple[np.ndarray, bool]:
    """An image file -> its 8 training crops (8, size, size) uint8, and whether a face was detected."""
    return training_windows(read_image(path), detector, size)
