"""The authors' Haar cascade (scale 1.3, 5 neighbours), made faster without changing its boxes on faces
well above its minimum size.

Two levers:
- ``min_face``: the smallest face searched, as a fraction of the frame's shorter side. OpenCV then
  skips the pyramid levels of smaller windows (which hold most of the work); the levels it keeps
  are the same levels, so the same windows fire. A face near the minimum can still move: its box
  merges fewer neighbouring windows (the astronaut's, about 1.25x the minimum, moves: IoU 0.92); from
  1.5x the minimum the boxes are those of ``haar-exact`` (tests/runtime/test_detect.py).
- ``threads``: OpenCV's thread count while detecting (process-wide in OpenCV; set on each call only
  when it differs).

Downscaling the frame was measured too and left out: it moves the pyramid off the cascade's 1.3^k
grid and changed boxes (IoU 0.75-0.85 on the astronaut).
"""

from __future__ import annotations

import os

import numpy as np

from edgefer.detect.base import Box
from edgefer.errors import InputError
from edgefer.imagefile import opencv
from edgefer.preprocess import FaceDetector, to_gray

#: Default smallest face: 15% of the frame's shorter side (72 px at 640x480, 162 px at 1920x1080).
DEFAULT_MIN_FACE = 0.15


class HaarDetector(FaceDetector):
    """The authors' cascade; ``min_face`` 0 searches every size (the paper's exact setting)."""

    name = "haar"

    def __init__(self, cascade: str | os.PathLike | None = None, *, min_face: float | None = None,
                 threads: int | None = None):
        super().__init__(cascade)
        min_face = DEFAULT_MIN_FACE if min_face is None else min_face
        if not 0 <= min_face < 1:
            raise InputError(f"min_face {min_face!r}: expected a fraction of the frame's shorter side in [0, 1)")
        self.min_face = min_face
        self.threads = threads

    def min_size(self, shape: tuple[int, ...]) -> int:
        """The smallest face side searched in a frame of ``shape``, in pixels (0: no limit)."""
        return int(self.min_face * min(shape[0], shape[1]))

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes (x, y, w, h), sorted by x then y; [] when none is found."""
        cv2 = opencv()
        if self.threads is not None and cv2.getNumThreads() != self.threads:
            cv2.setNumThreads(self.threads)
        side = self.min_size(image.shape)
        found = self._classifier().detectMultiScale(
            to_gray(image), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(side, side))
        return sorted(tuple(int(v) for v in box) for box in np.asarray(found).reshape(-1, 4))
