"""Whole frames, end to end: what a user with a camera feels (``edgefer bench --frames 640x480,...``).

Each cell is (frame size, detector, backend, threads) with the bundled MicroExpNet (microexpnet-ck).
The frame holds one real face (the bundled calibration face, the astronaut's, scaled to 35% of the
frame's height: a user about 60 cm from a webcam) on a gray background. Decoding is excluded (the
frame is in memory); validation, detection, the authors' crop and classification are included.
``Recognizer.predict`` is timed end to end, and each stage alone with the same plan: the record
carries the per-frame latency and fps, each stage's median and the detection share. A stream
cell then runs ``Recognizer.stream`` over a 30 fps clip of that face moving (detection every 5th
frame) and records its frames/s and how many face ids it gave (1 when tracking held).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgefer.bench.catalog import Availability, BenchBackend
from edgefer.bench.harness import TimingPlan, measure
from edgefer.bench.records import Record
from edgefer.errors import InputError, one_line

FRAME_MODEL = "microexpnet-ck"
#: The runtimes a frame cell can run MicroExpNet on (CPU; the detector always runs on ONNX Runtime/OpenCV).
FRAME_BACKENDS = ("onnxruntime", "openvino")
#: The face's height as a fraction of the frame's height.
FACE_SHARE = 0.35
STREAM_FRAMES = 150
STREAM_DETECT_EVERY = 5


def parse_frames(text: str) -> tuple[tuple[int, int], ...]:
    """``"640x480,1280x720"`` -> ((640, 480), (1280, 720)); InputError for anything else."""
    sizes = []
    for item in (t.strip().lower() for t in text.split(",") if t.strip()):
        width, _, height = item.partition("x")
        if not (width.isdigit() and height.isdigit() and 32 <= int(width) <= 8192 and 32 <= int(height) <= 8192):
            raise InputError(f"--frames {text!r}: expected WIDTHxHEIGHT sizes (32..8192), comma-separated, "
                             "e.g. 640x480,1280x720")
        sizes.append((int(width), int(height)))
    if not sizes:
        raise InputError("--frames is empty")
    return tuple(dict.fromkeys(sizes))


def composed_frame(width: int, height: int, shift: int = 0) -> np.ndarray:
    """A gray frame with the bundled face at 35% of its height, right of centre by ``shift`` pixels."""
    from edgefer.imagefile import opencv, read_image
    from edgefer.zoo import MODELS_DIR

    face = read_image(MODELS_DIR / "calibration-face.png")  # the face fills about half of this crop
    side = min(int(2 * FACE_SHARE * height), height, width)
    face = opencv().resize(face, (side, side), interpolation=opencv().INTER_AREA)
    canvas = np.full((height, width, 3), 96, np.uint8)
    x = min(max((width - side) // 2 + shift, 0), width - side)
    y = (height - side) // 2
    canvas[y:y + side, x:x + side] = face
    return canvas


def frame_cells(frames, detectors, backends: list[BenchBackend], threads) -> list[tuple]:
    """(size, detector, backend, threads) for every frame cell, CPU runtimes only."""
    usable = [b for b in backends if b.name in FRAME_BACKENDS]
    return [(size, detector, backend, count) for size in frames for detector in detectors
            for backend in usable for count in threads]


def bench_frames(cells: list[tuple], found: dict[str, Availability], plan: TimingPlan,
                 advance: Callable[[str], None]) -> list[Record]:
    """One record per frame cell."""
    records = []
    for size, detector, backend, threads in cells:
        advance(f"frames {size[0]}x{size[1]} {detector} {backend.name} {threads}T")
        base = Record(model=FRAME_MODEL, backend=backend.name, precision="fp32", batch=1, threads=threads,
                      status="unavailable", paper_name="MicroExpNet", device=backend.device, format="onnx",
                      frame=f"{size[0]}x{size[1]}", detector=detector)
        if not found[backend.name].available:
            base.reason = found[backend.name].reason
        else:
            try:
                _measure(base, size, detector, backend, threads, plan)
            except Exception as err:  # noqa: BLE001 - a failed cell is a record, never a crash of the bench
                base.status, base.reason = "failed", one_line(err, typed=True)
        records.append(base)
    return records


def _measure(record: Record, size: tuple[int, int], detector: str, backend: BenchBackend, threads: int,
             plan: TimingPlan) -> None:
    from edgefer.preprocess import faces_to_batch
    from edgefer.runtime import Recognizer

    recognizer = Recognizer(FRAME_MODEL, backend=backend.runtime, threads=threads, detector=detector)
    frame = composed_frame(*size)
    boxes = recognizer.detector.detect(frame)
    if len(boxes) != 1:
        record.status, record.reason = "failed", f"{detector} found {len(boxes)} faces in the {record.frame} frame"
        return
    crops = faces_to_batch(frame, None, recognizer.spec.input_size, boxes=boxes).pixels
    timing = measure(lambda: recognizer.predict(frame), plan)
    stages = {"detect": measure(lambda: recognizer.detector.detect(frame), plan).median,
              "crop": measure(lambda: faces_to_batch(frame, None, recognizer.spec.input_size, boxes=boxes),
                              plan).median,
              "classify": measure(lambda: recognizer.classify(crops), plan).median}
    record.timing = timing
    record.status = "ok" if timing.valid else "invalid"
    record.reason = "" if timing.valid else timing.invalid_reason
    record.runtime_precision = recognizer.backend.precision
    record.stages_ms = stages
    record.detection_share = stages["detect"] / sum(stages.values())
    record.stream_fps, record.stream_ids = _stream(recognizer, size)
    recognizer.close()


def _stream(recognizer, size: tuple[int, int]) -> tuple[float, int]:
    """Frames/s of ``Recognizer.stream`` over a 30 fps clip of the face moving 2 px a frame, to and fro
    (in memory), and the number of face ids it gave."""
    clip = [composed_frame(*size, shift=2 * abs(i % 120 - 60) - 60) for i in range(STREAM_FRAMES)]
    list(recognizer.stream(clip[:10], detect_every=STREAM_DETECT_EVERY, fps=30))  # warm-up
    start = time.perf_counter()
    results = list(recognizer.stream(clip, detect_every=STREAM_DETECT_EVERY, fps=30))
    seconds = time.perf_counter() - start
    return len(results) / seconds, len({face.id for r in results for face in r.faces})
