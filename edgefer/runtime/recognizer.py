"""Recognizer: image or frame -> faces -> emotions, on any backend, without torch."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from edgefer.detect import STREAM_DETECTOR, Detector, detector_name, make_detector
from edgefer.errors import InputError, InvalidFrameError, ModelError, QualityError
from edgefer.imagefile import decode_image, opencv, read_image
from edgefer.limits import check_threads
from edgefer.preprocess import BLAS_DOT_MAX, Box, CropBatch, crops_to_batch, faces_to_batch, ready_crop, to_uint8_image
from edgefer.runtime.base import Backend, softmax
from edgefer.runtime.loader import open_backend
from edgefer.spec import ModelSpec, authors_preprocessing
from edgefer.zoo import DEFAULT_MODEL, resolve_artifact

if TYPE_CHECKING:
    from edgefer.runtime.stream import FaceStream

#: What predict accepts: an array frame, a file path, or the bytes of an encoded image file.
Image = np.ndarray | str | os.PathLike | bytes | bytearray | memoryview

#: classify runs larger batches in chunks of this many crops (8 MB of input each, and the largest batch a
#: default TensorRT profile takes), so that the runtime's memory stays bounded whatever the batch size.
CLASSIFY_CHUNK = 256


@dataclass(frozen=True)
class Face:
    """One recognised face: its box (x, y, w, h) in the image, or None for a given crop; in a stream,
    ``id`` names the same face from frame to frame."""

    box: Box | None
    label: str
    scores: dict[str, float]
    id: int | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {} if self.id is None else {"id": self.id}
        return {**data, "box": list(self.box) if self.box is not None else None, "label": self.label,
                "scores": self.scores}


def check_recognizer_spec(spec: ModelSpec, path: str | os.PathLike) -> None:
    """Refuse (ModelError naming the field) a spec whose input the Recognizer does not make: it feeds the
    authors' crop (edgefer.preprocess.authors_crops), gray, pixels 0..255, NCHW (the backends check layout)."""
    if spec.channels != 1:
        raise ModelError(f"{path}: spec field 'channels' is {spec.channels}; Recognizer serves 1-channel "
                         "(gray) face models")
    if (spec.pixel_min, spec.pixel_max) != (0, 255):
        raise ModelError(f"{path}: spec fields 'pixel_min'/'pixel_max' ask for pixels {spec.pixel_min:g}.."
                         f"{spec.pixel_max:g}; Recognizer feeds 0..255")
    expected = authors_preprocessing(spec.input_size, spec.channels)
    if spec.preprocessing != expected:
        raise ModelError(f"{path}: spec field 'preprocessing' is {spec.preprocessing!r}; Recognizer implements "
                         f"{expected!r} only")


class Recognizer:
    """Facial-expression recognition with the authors' preprocessing.

    ``model`` is a bundled name (``microexpnet-ck``, ``microexpnet-oulu``) or an artifact path
    (.onnx, .xml, .engine/.plan); the backend follows the file type unless ``backend`` names one.
    ``detector`` is a name (``haar-exact``, the authors' cascade and the default for images;
    ``blazeface``, the default of :meth:`stream`; ``blazeface-full``; ``haar``, the cascade with a
    minimum face size) or any object with ``detect(frame) -> [(x, y, w, h), ...]``; ``threads`` bounds
    the detector's and OpenCV's threads too (OpenCV's count is process-wide). ``precision`` asks the
    backend for a compute precision (e.g. "bf16" on OpenVINO; see
    :func:`edgefer.runtime.loader.open_backend`); ``backend.precision`` says what really runs.
    Images over ``max_pixels`` (default ``$EDGEFER_MAX_IMAGE_PIXELS`` or 89,478,485) are refused.
    Thread-safe: one Recognizer may serve many threads.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, backend: str | None = None,
                 threads: int | None = None, device: str | None = None, precision: str | None = None,
                 spec: ModelSpec | None = None, detector: str | Detector | None = None,
                 max_pixels: int | None = None):
        check_threads(threads)
        self.path = resolve_artifact(model)
        self.backend: Backend = open_backend(self.path, backend, threads=threads, device=device, spec=spec,
                                             precision=precision)
        self.spec = self.backend.spec
        try:
            check_recognizer_spec(self.spec, self.path)
        except ModelError:
            self.backend.close()
            raise
        self.labels = self.spec.labels
        if threads is not None:  # OpenCV's pool (detection, crops) is process-wide: bounded here too
            opencv().setNumThreads(threads)
        on_openvino_cpu = self.backend.name == "openvino" and self.backend.device == "cpu"
        self._detector_runtime = "openvino" if on_openvino_cpu else "onnxruntime"  # where BlazeFace runs
        self.detector = make_detector(detector, threads=threads, runtime=self._detector_runtime)
        #: The detector's name, as results and bench records report it.
        self.detector_name = detector_name(self.detector)
        # streams use the detector asked for, else the real-time one (made on the first stream)
        self._stream_detector = self.detector if detector is not None else None
        self._threads = threads
        self.max_pixels = max_pixels
        size = self.spec.input_size  # classify's hot path: one ready (S, S) float32 crop, one BLAS dot
        self._crop_shape = (size, size) if size * size <= BLAS_DOT_MAX else None
        self._crop_ones = np.ones(size * size, np.float32)

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for ready face crops (84x84 gray, 0..255; one or a batch).

        Memory: the crops (28 KB each as float32; other dtypes are converted, one copy), the result, and
        the runtime's buffers for at most ``CLASSIFY_CHUNK`` crops: larger batches run in chunks.
        A model whose output holds NaN or infinity raises QualityError naming the model.
        """
        if (type(crops) is np.ndarray and crops.shape == self._crop_shape and crops.dtype == np.float32
                and crops.flags.c_contiguous):  # the hot path: one ready crop, the same checks inlined
            if not math.isfinite(np.vdot(crops, self._crop_ones)):
                raise InvalidFrameError("face crops hold NaN or infinite values")
            return self._probability_row(self.backend.run_one(crops))
        return self._scores(crops_to_batch(crops, self.spec.input_size))

    def _scores(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities for a checked batch: (N, 1, S, S) float32, contiguous and finite (the user's crops
        through ``crops_to_batch``, or crops cut from a checked frame), in chunks of ``CLASSIFY_CHUNK``."""
        if len(pixels) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if len(pixels) <= CLASSIFY_CHUNK:
            logits = self.backend.run_checked(pixels)
        else:
            logits = np.concatenate([self.backend.run_checked(pixels[start:start + CLASSIFY_CHUNK])
                                     for start in range(0, len(pixels), CLASSIFY_CHUNK)])
        return self._probabilities(logits)

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Softmax of the logits; QualityError naming the model when they hold NaN or infinity."""
        if len(logits) == 1:
            return self._probability_row(logits[0].tolist())
        if np.isfinite(logits).all():
            return softmax(logits)
        self._raise_broken()

    def _probability_row(self, values: list[float]) -> np.ndarray:
        """Softmax of one row of logits (batch 1, the latency path) in plain floats: numpy's per-call cost
        on 8 numbers is twice the arithmetic (1.4 + 3.4 us against 2.6 us measured on the EPYC). Their sum
        is finite exactly when every logit is."""
        if not math.isfinite(sum(values)):
            self._raise_broken()
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        total = sum(exps)
        return np.array([[e / total for e in exps]], np.float32)

    def _raise_broken(self) -> NoReturn:
        raise QualityError(f"{self.path}: the model output NaN or infinite scores "
                           f"({self.backend.name}, {self.backend.precision}); the model is broken")

    def classify_crop(self, image: Image, *, color: str = "bgr") -> Face:
        """One model-ready face crop (a file, bytes or array of any size): made gray and resized to the
        model's input, nothing cut away; the Face has box None. ``classify`` on the same 84x84 pixels
        gives the same scores."""
        pixels = ready_crop(self._load(image, color), self.spec.input_size)
        return self._faces([None], self.classify(pixels))[0]

    def predict(self, image: Image, *, detect: bool = True, color: str = "bgr",
                boxes: Sequence[Box] | None = None) -> list[Face]:
        """Faces found in one image, each with its emotion, left to right (by box x, then y); [] if none.

        ``image`` is a file path, encoded file bytes, or an array (gray, or ``color`` order; see
        :func:`edgefer.preprocess.to_uint8_image` for what is converted and what is refused).
        With ``detect=False`` the whole image is taken as one face crop (box None). ``boxes``
        (x, y, w, h) replace the detector: each is clipped to the frame, and boxes that are empty,
        outside or under ``MIN_FACE_SIZE`` are skipped (logged with the reason).
        """
        if boxes is None:
            return self.predict_many([image], detect=detect, color=color)[0]
        if isinstance(boxes, (str, bytes)) or not isinstance(boxes, (Sequence, np.ndarray)):
            raise InputError(f"boxes must be a list of (x, y, w, h) face boxes, got {type(boxes).__name__}")
        batch = faces_to_batch(self._load(image, color), None, self.spec.input_size, boxes=list(boxes))
        return self._classify_batches([batch])[0]

    def predict_many(self, images: Iterable[Image], *, detect: bool = True,
                     color: str = "bgr") -> list[list[Face]]:
        """Like :meth:`predict` for several images; all their faces run as one batch."""
        if isinstance(images, (str, bytes, os.PathLike, np.ndarray)) or not isinstance(images, Iterable):
            raise InputError(f"images must be a list of images (arrays, paths or bytes), got {type(images).__name__}; "
                             "predict takes one")
        return self._classify_batches([self._crops(self._load(image, color), detect) for image in images])

    def _crops(self, frame: np.ndarray, detect: bool = True) -> CropBatch:
        """The crops of a validated frame: its detected faces (boxes clipped to the frame), or the whole
        frame as one face."""
        if not detect:
            return faces_to_batch(frame, None, self.spec.input_size)
        return faces_to_batch(frame, None, self.spec.input_size, boxes=list(self.detector.detect(frame)))

    @property
    def stream_detector(self) -> Detector:
        """The detector :meth:`stream` uses: the one given to the Recognizer, else BlazeFace (real time)."""
        if self._stream_detector is None:
            self._stream_detector = make_detector(STREAM_DETECTOR, threads=self._threads,
                                                  runtime=self._detector_runtime)
        return self._stream_detector

    def stream(self, frames: Iterable[Image], *, detect_every: int = 5, fps: float | None = None,
               color: str = "bgr") -> FaceStream:
        """Faces frame by frame, each with an ``id`` stable across frames (see :class:`FaceStream`).

        The detector runs on every ``detect_every``-th frame; in between, each face's box follows a
        constant-velocity track from its last two detections, so a steady video costs one detection
        per ``detect_every`` frames. ``fps`` gives each frame its time (index / fps); without it the
        time is the seconds since the first frame, by the clock.
        """
        from edgefer.runtime.stream import FaceStream

        return FaceStream(self, frames, detect_every=detect_every, fps=fps, color=color)

    def _faces_with_ids(self, frame: np.ndarray, tracked: Sequence[tuple[int, Box]]) -> list[Face]:
        """Classify the given (id, box) faces of a validated frame, boxes already clipped to it."""
        if not tracked:
            return []
        batch = faces_to_batch(frame, None, self.spec.input_size, boxes=[box for _, box in tracked])
        faces = self._classify_batches([batch])[0]
        return [Face(f.box, f.label, f.scores, face_id) for f, (face_id, _) in zip(faces, tracked, strict=True)]

    def _classify_batches(self, batches: list[CropBatch]) -> list[list[Face]]:
        if not batches:
            return []
        probs = self._scores(np.concatenate([b.pixels for b in batches]))  # cut from checked frames
        results, start = [], 0
        for batch in batches:
            stop = start + len(batch.boxes)
            results.append(self._faces(batch.boxes, probs[start:stop]))
            start = stop
        return results

    def _load(self, image: Image, color: str) -> np.ndarray:
        if isinstance(image, (str, os.PathLike)):
            return read_image(Path(image), self.max_pixels)
        if isinstance(image, (bytes, bytearray, memoryview)):
            return decode_image(bytes(image), "image bytes", self.max_pixels)
        return to_uint8_image(image, color, self.max_pixels)

    def _faces(self, boxes: Sequence[Box | None], probs: np.ndarray) -> list[Face]:
        faces = []
        for box, row in zip(boxes, probs, strict=True):
            scores = {label: float(p) for label, p in zip(self.labels, row, strict=True)}
            faces.append(Face(box, self.labels[int(row.argmax())], scores))
        return faces

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Recognizer({str(self.path)!r}, backend={self.backend.name!r}, "
                f"device={self.backend.device!r}, precision={self.backend.precision!r})")
