"""Frames composed from the real astronaut photo: moved, scaled, two faces, no face; and video files of them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

ASTRONAUT = Path(__file__).parent / "fixtures" / "astronaut.png"
#: Where the face is in the astronaut photo (Haar's box, the authors' cascade): x, y, w, h.
FACE_IN_PHOTO = (176, 66, 95, 95)
#: The head-and-shoulders part of the photo that is pasted into frames.
PORTRAIT = (slice(0, 300), slice(110, 340))


def astronaut() -> np.ndarray:
    return cv2.imread(str(ASTRONAUT))


def portrait(scale: float = 1.0) -> np.ndarray:
    part = astronaut()[PORTRAIT]
    return part if scale == 1.0 else cv2.resize(part, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def face_box(x: int, y: int, scale: float = 1.0) -> tuple[int, int, int, int]:
    """Where the face lands (Haar's framing) when the portrait at ``scale`` is pasted at (x, y)."""
    fx, fy, fw, fh = FACE_IN_PHOTO
    return (round(x + (fx - PORTRAIT[1].start) * scale), round(y + (fy - PORTRAIT[0].start) * scale),
            round(fw * scale), round(fh * scale))


def frame(width: int = 640, height: int = 480, faces: Iterable[tuple[int, int, float]] = ((200, 90, 1.0),),
          background: int = 90) -> np.ndarray:
    """A gray frame with the portrait pasted at each (x, y, scale); no faces gives an empty frame."""
    canvas = np.full((height, width, 3), background, np.uint8)
    for x, y, scale in faces:
        part = portrait(scale)
        h, w = min(part.shape[0], height - y), min(part.shape[1], width - x)
        canvas[y:y + h, x:x + w] = part[:h, :w]
    return canvas


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 30.0, fourcc: str = "mp4v") -> Path:
    """Frames written with OpenCV's VideoWriter (mp4v in .mp4, MJPG in .avi)."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for image in frames:
        writer.write(image)
    writer.release()
    return path


def iou(a, b) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / (a[2] * a[3] + b[2] * b[3] - width * height)
