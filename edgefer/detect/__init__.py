"""Face detectors behind one small interface: ``detect(frame) -> [(x, y, w, h), ...]``.

- ``haar``: the authors' OpenCV cascade (scale 1.3, 5 neighbours), faster by a minimum face size;
- ``haar-exact``: the same cascade searching every face size (the paper's setting, slowest);
- ``blazeface`` / ``blazeface-full``: MediaPipe's BlazeFace short / full range on ONNX Runtime (or
  OpenVINO), boxes mapped onto Haar's framing.

Any object with a ``detect(frame)`` method returning boxes may stand in for these.
"""

from __future__ import annotations

from edgefer.detect.base import Box, Detector, detector_name, iou
from edgefer.errors import InputError

DETECTORS = ("blazeface", "blazeface-full", "haar", "haar-exact")
#: Still images: the authors' own pipeline (their cascade at every size), so that a photo gets the crop the
#: models were trained on. MicroExpNet's 84x84 crop is sensitive to framing: on the README's astronaut the
#: CK+ model says happy 0.526 with haar-exact, contempt with either faster detector's box a few pixels off.
DEFAULT_DETECTOR = "haar-exact"
#: Videos, cameras and Recognizer.stream: real time needs the fast detector (BlazeFace, ~1.4 ms a frame).
STREAM_DETECTOR = "blazeface"


def make_detector(detector: str | Detector | None = None, *, threads: int | None = None,
                  runtime: str = "onnxruntime", min_face: float | None = None) -> Detector:
    """A detector by name (None: the default), or the user's own object as it is. ``runtime`` is where
    BlazeFace runs ("onnxruntime" or "openvino"); the Haar cascades run in OpenCV. ``min_face`` sets the
    fast ``haar``'s smallest face (a fraction of the frame's shorter side) and means nothing to the others."""
    if detector is None:
        detector = DEFAULT_DETECTOR
    if min_face is not None and (not isinstance(detector, str) or detector.strip().lower() != "haar"):
        shown = detector if isinstance(detector, str) else type(detector).__name__
        raise InputError(f"min_face (--min-face) applies to the 'haar' detector, not {shown!r}")
    if not isinstance(detector, str):
        if not callable(getattr(detector, "detect", None)):
            raise InputError(f"detector {type(detector).__name__} has no detect(frame) method; expected a name "
                             f"({', '.join(DETECTORS)}) or an object with detect(frame) -> boxes")
        return detector
    name = detector.strip().lower()
    if name in ("blazeface", "blazeface-short"):
        from edgefer.detect.blazeface import BlazeFaceDetector

        return BlazeFaceDetector("short", threads=threads, runtime=runtime)
    if name == "blazeface-full":
        from edgefer.detect.blazeface import BlazeFaceDetector

        return BlazeFaceDetector("full", threads=threads, runtime=runtime)
    if name in ("haar", "haar-exact"):
        from edgefer.detect.haar import HaarDetector

        detector = HaarDetector(min_face=0.0 if name == "haar-exact" else min_face, threads=threads)
        detector.name = name
        return detector
    raise InputError(f"unknown detector {detector!r}, expected one of {', '.join(DETECTORS)}")


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "STREAM_DETECTOR", "Box", "Detector", "detector_name", "iou",
           "make_detector"]
