"""Where a stream's results go: a CSV log, an annotated video, and the loop that feeds them.

Both files are written beside their target under a temporary name and renamed over it when
closed, also when the stream ends by an error or Ctrl-C: a reader never sees a half-written file,
and an interrupted run leaves a complete CSV and a playable video of the frames done.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from edgefer.errors import InputError
from edgefer.fileio import csv_cell, fsync_dir
from edgefer.imagefile import opencv
from edgefer.runtime.stream import FrameFaces


def writable_target(path: str | os.PathLike, what: str) -> Path:
    """``path`` if a file can be created there; InputError naming it otherwise."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder; expected a file name")
    if not path.parent.is_dir():
        raise InputError(f"{what} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{what} {path}: folder {path.parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} {path}: file is not writable")
    return path


def _staging(path: Path) -> Path:
    """The temporary name beside ``path``, keeping its suffix (VideoWriter picks the container by it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


class CsvLog:
    """One row per face and frame: frame, time, face id, box, label and one score column per label."""

    def __init__(self, path: str | os.PathLike, labels: Iterable[str]):
        self.path = writable_target(path, "--csv")
        self.labels = list(labels)
        self._tmp = _staging(self.path)
        try:
            self._file = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as err:
            raise InputError(f"--csv {self.path}: cannot be written ({err.strerror})") from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(["frame", "time", "face_id", "x", "y", "w", "h", "label",
                               *map(csv_cell, self.labels)])  # labels come from the model's files

    def write(self, result: FrameFaces) -> None:
        for face in result.faces:
            self._writer.writerow([result.index, f"{result.time:.6f}", face.id, *face.box, csv_cell(face.label),
                                   *(f"{face.scores[label]:.6f}" for label in self.labels)])

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)


class AnnotatedVideo:
    """The frames with each face's box, id, label and score, and the measured frames/s, drawn on them."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = writable_target(path, "--annotate")
        cv2 = opencv()
        self._tmp = _staging(self.path)
        fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), fps or 30.0, size)
        if not self._writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise InputError(f"--annotate {self.path}: OpenCV cannot write this kind of video here; "
                             "expected a .mp4 or .avi name")
        self.size = size
        self._open = True

    def write(self, frame: np.ndarray, result: FrameFaces, fps: float) -> None:
        cv2 = opencv()
        image = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        image = image.copy()
        for face in result.faces:
            x, y, w, h = face.box
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 220, 0), 2)
            text = f"#{face.id} {face.label} {face.scores[face.label]:.2f}"
            cv2.putText(image, text, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 220, 0), 1,
                        cv2.LINE_AA)
        cv2.putText(image, f"{fps:.1f} fps", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 200, 255), 2, cv2.LINE_AA)
        self._writer.write(image)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._writer.release()
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)


class FrameRate:
    """Frames per second over the last ``window`` frames, by the clock."""

    def __init__(self, window: int = 30):
        self._times: list[float] = []
        self.window = window

    def tick(self) -> float:
        self._times.append(time.perf_counter())
        self._times = self._times[-self.window - 1:]
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


def run_stream(frames: Iterable[np.ndarray], stream, *, csv_log: CsvLog | None = None,
               annotated: AnnotatedVideo | None = None,
               on_frame: Callable[[FrameFaces, float], None] | None = None) -> int:
    """Feed ``frames`` through ``stream`` (a FaceStream) into the outputs; returns the frames done.

    The outputs are closed (complete, renamed into place) however the loop ends: exhausted, by an
    error, or by Ctrl-C, which is raised again after.
    """
    rate = FrameRate()
    done = 0
    try:
        for frame in frames:
            result = stream.process(frame)
            fps = rate.tick()
            if csv_log is not None:
                csv_log.write(result)
            if annotated is not None:
                annotated.write(frame, result, fps)
            if on_frame is not None:
                on_frame(result, fps)
            done += 1
    finally:
        for output in (csv_log, annotated):
            if output is not None:
                output.close()
    return done


class StreamSummary:
    """What a stream saw: frames, frames with faces, and per face id its frames and most frequent label."""

    def __init__(self, source: str):
        self.source = source
        self.frames = 0
        self.frames_with_faces = 0
        self.ids: dict[int, dict[str, int]] = {}
        self._start = time.perf_counter()

    def add(self, result: FrameFaces) -> None:
        self.frames += 1
        self.frames_with_faces += bool(result.faces)
        for face in result.faces:
            labels = self.ids.setdefault(face.id, {})
            labels[face.label] = labels.get(face.label, 0) + 1

    def lines(self) -> list[str]:
        seconds = time.perf_counter() - self._start
        rate = self.frames / seconds if seconds > 0 else 0.0
        lines = [f"{self.source}: {self.frames} frames ({rate:.0f} frames/s), a face in {self.frames_with_faces}, "
                 f"{len(self.ids)} face id(s)"]
        for face_id, labels in self.ids.items():
            top = sorted(labels.items(), key=lambda kv: -kv[1])[:3]
            lines.append(f"{self.source}  face #{face_id}  in {sum(labels.values())} frames  "
                         + "  ".join(f"{label} {count}" for label, count in top))
        return lines
