"""What every face detector offers: ``detect(frame) -> [(x, y, w, h), ...]`` on a uint8 BGR or gray frame."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

Box = tuple[int, int, int, int]


@runtime_checkable
class Detector(Protocol):
    """A face detector: boxes (x, y, w, h) in frame pixels, left to right. Users' own objects qualify."""

    def detect(self, image: np.ndarray) -> list[Box]: ...


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def detector_name(detector: object) -> str:
    """The name a detector reports in results: its ``name`` attribute, else its class name."""
    return str(getattr(detector, "name", None) or type(detector).__name__)
