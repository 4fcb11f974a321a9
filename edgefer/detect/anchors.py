"""BlazeFace's SSD anchors, box decoding and weighted non-maximum suppression, in numpy.

As MediaPipe's face detection graphs define them (``face_detection_short_range.pbtxt``,
``face_detection_full_range.pbtxt``): anchors of unit size on a grid per stride, offset 0.5;
regressors are (cx, cy, w, h, 6 keypoints) in input pixels relative to the anchor; scores are
logits clipped to +-100; overlapping boxes are blended, weighted by score (MediaPipe's WEIGHTED).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorSpec:
    """One BlazeFace variant's grid: input side and, per output layer, its stride."""

    input_size: int
    strides: tuple[int, ...]
    #: Two anchors per cell (the interpolated aspect ratio 1.0) or one.
    interpolated: bool


def ssd_anchors(spec: AnchorSpec) -> np.ndarray:
    """(N, 2) anchor centres in 0..1, in the order of the model's outputs."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        repeats = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:  # same-stride layers share a grid
            repeats += 2 if spec.interpolated else 1
            layer += 1
        cells = -(-spec.input_size // stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, repeats, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (K, 4) as x0, y0, x1, y1 in 0..1 of the model input, and their scores (K,), above ``min_score``."""
    logits = np.clip(raw_scores.reshape(-1), -100.0, 100.0)
    keep = logits > np.log(min_score / (1.0 - min_score))  # sigmoid(x) > s without the exp on every anchor
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    raw = raw_boxes.reshape(-1, raw_boxes.shape[-1])[keep, :4] / input_size
    centre = raw[:, :2] + anchors[keep]
    half = raw[:, 2:4] / 2
    scores = 1.0 / (1.0 + np.exp(-logits[keep]))
    return np.concatenate([centre - half, centre + half], axis=1), scores.astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster (IoU > ``threshold`` with its best box) becomes the
    score-weighted mean of its boxes, with the best box's score."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    left = np.ones(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if not left[i]:
            continue
        top_left = np.maximum(boxes[i, :2], boxes[:, :2])
        bottom_right = np.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        overlap = inter / np.maximum(areas[i] + areas - inter, 1e-12)
        cluster = left & (overlap > threshold)
        cluster[i] = True
        weights = scores[cluster]
        kept.append(((boxes[cluster] * weights[:, None]).sum(axis=0) / weights.sum(), float(scores[i])))
        left &= ~cluster
    return kept
