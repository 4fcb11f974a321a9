"""Video files and cameras as frame sources (OpenCV's VideoCapture), with one-line errors.

A file is opened and its first frame decoded before anything is processed, so a missing,
corrupt, truncated-before-its-index, zero-frame or undecodable file fails at once (InputError,
exit 2) naming the file; a camera that cannot be opened is BackendUnavailable (exit 5). A file
that stops decoding before the frame count its container announced ends the iteration and leaves
``broken`` set: the caller finishes its outputs, then reports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgefer.errors import BackendUnavailable, InputError
from edgefer.imagefile import opencv
from edgefer.nativelog import native_stderr_silenced

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
_EXPECTED = "a video OpenCV's FFmpeg can decode (mp4, avi, mkv, mov, webm, ...)"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """FFmpeg and OpenCV print their own warnings to file descriptor 2 ("moov atom not found");
    edgefer's one-line error says what went wrong, so those go to /dev/null meanwhile. Ctrl-C and
    SIGTERM wait until stderr is back (else "interrupted" would go to /dev/null)."""
    with _sigint_deferred(), native_stderr_silenced():
        yield


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM meanwhile (main thread, POSIX); one that arrives meanwhile is delivered
    right after."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class VideoSource:
    """Frames (uint8 BGR) of a video file or camera; iterate once. ``fps`` is the container's or
    camera's rate (0 when unknown), ``frame_count`` the container's count (0 for cameras or unknown)."""

    def __init__(self, capture, name: str, first: np.ndarray, *, camera: bool):
        cv2 = opencv()
        self.name = name
        self.camera = camera
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = 0 if camera else max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self.size = (first.shape[1], first.shape[0])
        self.frames_read = 0
        #: Why the video ended before its announced frame count ("" when it did not).
        self.broken = ""
        self._capture = capture
        self._first: np.ndarray | None = first

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                if self._first is not None:
                    frame, self._first = self._first, None
                else:
                    with quiet_native_stderr():
                        ok, frame = self._capture.read()
                    if not ok or frame is None:
                        self._check_end()
                        return
                self.frames_read += 1
                yield frame
        finally:
            self.close()

    def _check_end(self) -> None:
        # Some containers only estimate their count: a frame or 1% short is no breakage.
        if not self.camera and self.frames_read < self.frame_count * 0.99 - 1:
            self.broken = (f"{self.name}: video ended after {self.frames_read} of {self.frame_count} frames "
                           "(truncated or corrupt); the frames read were processed")

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | os.PathLike) -> VideoSource:
    """A video file, its first frame decoded; InputError naming the file when it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file; expected {_EXPECTED}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); expected {_EXPECTED}")
    cv2 = opencv()
    with quiet_native_stderr():
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        opened = capture.isOpened()
        ok, first = capture.read() if opened else (False, None)
    if not opened:
        raise InputError(f"{path}: not a readable video (corrupt, truncated, without frames, in a codec this "
                         f"FFmpeg cannot decode, or not a video); expected {_EXPECTED}")
    if not ok or first is None:
        capture.release()
        raise InputError(f"{path}: no frame could be decoded (zero frames, or a codec FFmpeg here cannot "
                         f"decode); expected {_EXPECTED}")
    return VideoSource(capture, str(path), first, camera=False)


def open_camera(index: int, warmup_seconds: float = 2.0) -> VideoSource:
    """Camera ``index`` (0 = the first); BackendUnavailable when it is missing, busy or gives no frame."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise InputError(f"camera index {index!r}: expected a whole number >= 0")
    cv2 = opencv()
    with quiet_native_stderr():
        capture = cv2.VideoCapture(index)
        opened = capture.isOpened()
        first, deadline = None, time.monotonic() + warmup_seconds
        while opened and first is None and time.monotonic() < deadline:
            ok, frame = capture.read()
            first = frame if ok else None
    if first is None:
        capture.release()
        state = "gives no frame" if opened else "cannot be opened (no such device, busy, or no permission)"
        raise BackendUnavailable(f"camera {index} {state}")
    return VideoSource(capture, f"camera {index}", first, camera=True)


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
