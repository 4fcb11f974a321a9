"""Fit the box transform that maps BlazeFace's boxes onto the authors' Haar framing, and measure it.

The authors' crop (256, rows/cols 32..255, 84) was made for the Haar cascade's boxes; BlazeFace
frames a face differently (tighter, lower). On every real face at hand where both detect (the
astronaut of tests/fixtures and the calibration face, each moved, scaled, flipped, rotated a little,
darkened, brightened, blurred and noised, alone and inside 640x480 / 1280x720 / 1920x1080 frames),
this fits one fixed transform per BlazeFace variant: a square of side ``scale`` x sqrt(w h) whose
centre moves by (dx, dy) x that side (closed-form least squares: the means of the ratios).

It then reports, on the same faces, the mean IoU of the mapped boxes with Haar's and the top-1
agreement of the two paths (crop by Haar's box vs by the mapped BlazeFace box) for both bundled
models, and writes everything (fits, per-face boxes, agreement) to edgefer/models/blazeface-framing.json,
which the runtime reads.

    .venv/bin/python tools/fit_blazeface_framing.py
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgefer.detect.base import iou
from edgefer.detect.blazeface import FRAMING_FILE, BlazeFaceDetector, Framing
from edgefer.imagefile import opencv
from edgefer.preprocess import FaceDetector, crop_face, read_image
from edgefer.runtime import Recognizer

REPO = Path(__file__).resolve().parents[1]
FACES = [REPO / "tests" / "fixtures" / "astronaut.png", REPO / "edgefer" / "models" / "calibration-face.png"]
FRAMES = [(640, 480), (1280, 720), (1920, 1080)]


def variants(image: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The photo itself, photometric and geometric changes of it, and it placed in camera-sized frames."""
    cv2 = opencv()
    yield "as is", image
    yield "flipped", image[:, ::-1].copy()
    for gain, bias in ((0.6, 0), (1.2, 20), (0.8, -20)):
        yield f"gain {gain} bias {bias}", np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    yield "blurred", cv2.GaussianBlur(image, (5, 5), 1.5)
    noisy = image.astype(np.int16) + np.random.default_rng(0).normal(0, 8, image.shape).astype(np.int16)
    yield "noise 8", np.clip(noisy, 0, 255).astype(np.uint8)
    height, width = image.shape[:2]
    for angle in (-10, -5, 5, 10):
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        yield f"rotated {angle}", cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    for frame_w, frame_h in FRAMES:
        for scale in (0.75, 1.0, 1.5, 2.0):
            small = cv2.resize(image, None, fx=scale * frame_h / 480, fy=scale * frame_h / 480)
            h, w = small.shape[:2]
            if h > frame_h or w > frame_w:
                continue
            for where in (0.1, 0.5, 0.9):
                frame = np.full((frame_h, frame_w, 3), 96, np.uint8)
                x, y = int((frame_w - w) * where), int((frame_h - h) * (1 - where))
                frame[y:y + h, x:x + w] = small
                yield f"{frame_w}x{frame_h} scale {scale} at {where}", frame


def fit(pairs: list[tuple[tuple, tuple]]) -> Framing:
    """Mean ratios: side scale (geometric mean) and centre offsets, in units of the BlazeFace side."""
    scales, dxs, dys = [], [], []
    for (bx0, by0, bx1, by1), (hx, hy, hw, hh) in pairs:
        side = np.sqrt((bx1 - bx0) * (by1 - by0))
        scales.append(np.sqrt(hw * hh) / side)
        dxs.append((hx + hw / 2 - (bx0 + bx1) / 2) / side)
        dys.append((hy + hh / 2 - (by0 + by1) / 2) / side)
    return Framing(float(np.exp(np.mean(np.log(scales)))), float(np.mean(dxs)), float(np.mean(dys)))


def raw_boxes(detector: BlazeFaceDetector, frame: np.ndarray) -> list[tuple[float, float, float, float]]:
    """BlazeFace's own boxes as (x0, y0, x1, y1) floats in frame pixels."""
    return [(x, y, x + w, y + h) for x, y, w, h in detector.detect(frame)]


def references(samples, haar: FaceDetector, recognizers: dict) -> dict[str, dict[str, float]]:
    """What the agreement above should be read against, on the faces Haar finds once: Haar's own box
    moved by 2 px (right, then down), and the faster ``haar`` detector (minimum face size) vs the exact one."""
    from edgefer.detect import make_detector

    fast = make_detector("haar", threads=1)
    found = [(frame, haar.detect(frame)) for _, frame in samples]
    found = [(frame, boxes[0]) for frame, boxes in found if len(boxes) == 1]
    moved = {"haar box moved 2 px": [[(x + 2, y, w, h), (x, y + 2, w, h)] for _, (x, y, w, h) in found]}
    fast_boxes = [fast.detect(frame) for frame, _ in found]
    out: dict[str, dict[str, float]] = {}
    big = [(b, box) for b, (frame, box) in zip(fast_boxes, found, strict=True)
           if box[2] >= 1.5 * fast.min_size(frame.shape)]
    ious = [iou(b[0], box) if len(b) == 1 else 0.0 for b, box in big]
    out["haar (min face) vs haar-exact"] = {
        "faces": len(found), "faces_over_1.5x_min_face": len(big),
        "found_over_1.5x_min_face": float(np.mean([len(b) == 1 for b, _ in big])),
        "mean_iou": float(np.mean(ious)), "min_iou": float(np.min(ious)),
        "found_all": float(np.mean([len(b) == 1 for b in fast_boxes]))}
    for name, shifted in moved.items():
        out[name] = {"faces": len(found)}
        for model, recognizer in recognizers.items():
            base = recognizer.classify(np.stack([crop_face(f, b) for f, b in found])).argmax(1)
            hits = [recognizer.classify(np.stack([crop_face(f, s[k]) for (f, _), s in zip(found, shifted,
                                                                                             strict=True)])).argmax(1)
                    == base for k in range(2)]
            out[name][f"top1_{model}"] = float(np.mean(hits))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FRAMING_FILE)
    args = parser.parse_args()
    haar = FaceDetector()
    samples = [(f"{path.name} {name}", frame) for path in FACES for name, frame in variants(read_image(path))]
    result: dict[str, object] = {"faces": len(samples), "fits": {}, "agreement": {}, "pairs": {}}
    recognizers = {name: Recognizer(name, threads=1, detector="haar-exact")
                   for name in ("microexpnet-ck", "microexpnet-oulu")}
    for variant in ("short", "full"):
        raw = BlazeFaceDetector(variant, framing="raw", threads=1)
        pairs, kept = [], []
        for name, frame in samples:
            truth, found = haar.detect(frame), raw_boxes(raw, frame)
            if len(truth) == 1 and len(found) == 1:
                pairs.append((found[0], truth[0]))
                kept.append((name, frame))
        framing = fit(pairs)
        result["fits"][variant] = {"scale": framing.scale, "dx": framing.dx, "dy": framing.dy, "faces": len(pairs)}
        mapped = [tuple(int(round(v)) for v in framing.apply(*b)) for b, _ in pairs]
        ious = [iou(m, h) for m, (_, h) in zip(mapped, pairs, strict=True)]
        raw_ious = [iou((b[0], b[1], b[2] - b[0], b[3] - b[1]), h) for b, h in pairs]
        agreement = {"mean_iou": float(np.mean(ious)), "min_iou": float(np.min(ious)),
                     "mean_iou_unmapped": float(np.mean(raw_ious))}
        for model, recognizer in recognizers.items():
            by_haar = recognizer.classify(np.stack([crop_face(f, h) for (_, f), (_, h) in zip(kept, pairs,
                                                                                                 strict=True)]))
            by_blaze = recognizer.classify(np.stack([crop_face(f, m) for (_, f), m in zip(kept, mapped,
                                                                                             strict=True)]))
            agreement[f"top1_{model}"] = float(np.mean(by_haar.argmax(1) == by_blaze.argmax(1)))
        result["agreement"][variant] = agreement
        result["pairs"][variant] = [{"face": name, "blazeface_x0y0x1y1": [round(v, 2) for v in b],
                                     "haar_xywh": list(h)} for (name, _), (b, h) in zip(kept, pairs, strict=True)]
        print(f"{variant}: {len(pairs)} of {len(samples)} faces found by both; scale {framing.scale:.4f} "
              f"dx {framing.dx:+.4f} dy {framing.dy:+.4f}; " + ", ".join(f"{k} {v:.3f}" for k, v in agreement.items()))
    result["references"] = references(samples, haar, recognizers)
    print("references: " + json.dumps(result["references"]))
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
