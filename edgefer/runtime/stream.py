"""Streams: faces frame by frame with ids stable across frames, detection every N frames.

Between detections each face keeps a constant-velocity track from its last two detections (a
cheap tracker: no pixels are read), so a steady video pays one detection per N frames plus the
crops and the classifier. At each detection, tracks and new boxes are matched greedily by IoU;
a matched box keeps its track's id, an unmatched one gets a new id, and a track missed by
``patience`` detections in a row ends (a face that leaves and comes back gets a new id).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edgefer.detect.base import iou
from edgefer.errors import InputError
from edgefer.preprocess import Box, SkippedBox, clip_box

#: Smallest IoU between a track's predicted box and a detection for them to be the same face.
MATCH_IOU = 0.3


@dataclass(frozen=True)
class FrameFaces:
    """One frame's result: its index in the stream, its time in seconds, the faces (with ids) and
    whether the detector ran on it."""

    index: int
    time: float
    faces: list  # list[Face]
    detected: bool

    def to_dict(self) -> dict[str, object]:
        return {"frame": self.index, "time": round(self.time, 6), "detected": self.detected,
                "faces": [face.to_dict() for face in self.faces]}


@dataclass
class _Track:
    id: int
    box: np.ndarray  # x, y, w, h as floats, at frame ``seen``
    seen: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    missed: int = 0

    def at(self, index: int) -> np.ndarray:
        return self.box + self.velocity * (index - self.seen)


class Tracker:
    """Face ids across frames: IoU matching at detections, constant-velocity boxes in between."""

    def __init__(self, patience: int = 2):
        self.patience = patience
        self.tracks: list[_Track] = []
        self._next_id = 1

    def update(self, boxes: list[Box], index: int) -> list[tuple[int, Box]]:
        """Match the boxes detected at frame ``index``; (id, box) for each box, in the boxes' order."""
        predicted = [t.at(index) for t in self.tracks]
        pairs = sorted(((float(iou(p, b)), ti, bi) for ti, p in enumerate(predicted)
                        for bi, b in enumerate(boxes)), reverse=True)
        track_of: dict[int, _Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < MATCH_IOU:
                break
            if ti in used or bi in track_of:
                continue
            used.add(ti)
            track_of[bi] = self.tracks[ti]
        for ti, track in enumerate(self.tracks):
            if ti not in used:
                track.missed += 1
        survivors = [t for ti, t in enumerate(self.tracks) if ti in used or t.missed <= self.patience]
        out = []
        for bi, box in enumerate(boxes):
            new = np.asarray(box, float)
            track = track_of.get(bi)
            if track is None:
                track = _Track(self._next_id, new, index)
                self._next_id += 1
                survivors.append(track)
            else:
                track.velocity = (new - track.box) / max(index - track.seen, 1)
                track.box, track.seen, track.missed = new, index, 0
            out.append((track.id, box))
        self.tracks = survivors
        return out

    def predict(self, index: int) -> list[tuple[int, Box]]:
        """(id, box) of every live track at frame ``index`` (tracks missed at the last detection are hidden)."""
        return [(t.id, tuple(int(round(v)) for v in t.at(index))) for t in self.tracks if t.missed == 0]


class FaceStream:
    """An iterator of :class:`FrameFaces` over ``frames`` (arrays, paths or encoded bytes).

    A bad frame raises (InvalidFrameError, InputError) from ``next()`` for that frame only: the
    tracks and the detection schedule are left as they were and the next ``next()`` goes on with
    the following frame. ``process(frame)`` handles one frame directly (for frames pushed one by one).
    """

    def __init__(self, recognizer, frames: Iterable | None = None, *, detect_every: int = 5,
                 fps: float | None = None, color: str = "bgr", patience: int = 2):
        if isinstance(detect_every, bool) or not isinstance(detect_every, int) or detect_every < 1:
            raise InputError(f"detect_every {detect_every!r}: expected a whole number >= 1")
        if fps is not None and not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
            raise InputError(f"fps {fps!r}: expected a positive number of frames per second")
        self.recognizer = recognizer
        self.detector = recognizer.stream_detector
        self.detect_every = detect_every
        self.fps = fps
        self.color = color
        self.tracker = Tracker(patience)
        self.frames_done = 0
        self._frames: Iterator | None = iter(_check_frames(frames)) if frames is not None else None
        self._index = 0
        self._last_detection: int | None = None
        self._start: float | None = None

    def __iter__(self) -> FaceStream:
        return self

    def __next__(self) -> FrameFaces:
        if self._frames is None:
            raise StopIteration
        return self.process(next(self._frames))

    def process(self, frame) -> FrameFaces:
        """The faces of the next frame of the stream."""
        index = self._index
        self._index += 1  # a bad frame still takes its place in the stream
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        image = self.recognizer._load(frame, self.color)
        due = self._last_detection is None or index - self._last_detection >= self.detect_every
        if due:
            boxes = [b for b in (clip_box(b, image.shape) for b in self.detector.detect(image))
                     if not isinstance(b, SkippedBox)]
            tracked = self.tracker.update(boxes, index)
            self._last_detection = index
        else:
            tracked = [(i, b) for i, b in ((i, clip_box(b, image.shape)) for i, b in self.tracker.predict(index))
                       if not isinstance(b, SkippedBox)]
        faces = self.recognizer._faces_with_ids(image, tracked)
        self.frames_done += 1
        seconds = index / self.fps if self.fps else now - self._start
        return FrameFaces(index, seconds, faces, due)


def _check_frames(frames: object) -> Iterable:
    """``frames`` if it is a sequence, iterator or (N, H, W, C) array of frames; InputError for one frame, a
    path or a non-iterable."""
    if isinstance(frames, (str, bytes, os.PathLike)):
        raise InputError(f"frames must be an iterable of frames, got one path or bytes ({type(frames).__name__}); "
                         "edgefer.video.open_video(path) gives a video's frames")
    if (isinstance(frames, np.ndarray) and frames.ndim != 4) or not isinstance(frames, Iterable):
        got = f"an array shaped {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise InputError(f"frames must be an iterable of frames (arrays, paths or encoded bytes) or one array "
                         f"of frames (N, H, W, C), got {got}; predict() takes one frame")
    return frames
