"""The accuracy column: top-1 of each artifact on a labelled face folder (``--data DIR``).

The folder holds one sub-folder per label, named as the model's labels (neutral, anger, contempt,
disgust, fear, happy, sadness, surprise), with images inside. Each image gives one face, as
``Recognizer.predict`` finds it: the authors' Haar pipeline, first face, or the whole image when
no face is found (the authors' own fallback, right for ready crops).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import InputError
from edgefer.spec import LABELS

CHUNK = 64


@dataclass(frozen=True)
class LabelledCrops:
    pixels: np.ndarray  # (N, 1, 84, 84) float32, 0..255
    labels: np.ndarray  # (N,) index into LABELS

    def save(self, path: str | os.PathLike) -> Path:
        from edgefer.fileio import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, pixels=self.pixels, labels=self.labels)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelledCrops:
        with np.load(path) as data:
            return cls(data["pixels"], data["labels"])


def labelled_images(folder: str | os.PathLike) -> list[tuple[Path, int]]:
    """(image, label index) for every image under ``folder/<label>/``; InputError for anything else."""
    from edgefer.convert.calibration import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: --data must be a folder with one sub-folder per label")
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    unknown = [p.name for p in classes if p.name not in LABELS]
    if unknown:
        raise InputError(f"{folder}: sub-folders {', '.join(unknown)} are not labels; expected names from "
                         f"{', '.join(LABELS)}")
    items = [(p, LABELS.index(c.name)) for c in classes for p in sorted(c.rglob("*"))
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise InputError(f"{folder}: no images in its label sub-folders ({', '.join(LABELS)})")
    return items


def load_labelled_folder(folder: str | os.PathLike, size: int = 84) -> LabelledCrops:
    """One face crop per image, as ``Recognizer.predict`` would take it, with its label."""
    from edgefer.preprocess import FaceDetector, faces_to_batch, read_image

    detector = FaceDetector()
    crops, labels = [], []
    for path, label in labelled_images(folder):
        image = read_image(path)
        batch = faces_to_batch(image, detector, size)
        if not batch.boxes:
            batch = faces_to_batch(image, None, size)
        crops.append(batch.pixels[0])
        labels.append(label)
    return LabelledCrops(np.stack(crops).astype(np.float32), np.asarray(labels, dtype=np.int64))


def model_input(crops: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """84x84 gray crops (N, 1, 84, 84) -> the model's (C, S, S): resized, gray repeated over channels."""
    channels, size = input_shape[0], input_shape[-1]
    if crops.shape[1:] == tuple(input_shape):
        return crops
    import cv2

    resized = np.stack([cv2.resize(c[0], (size, size)) for c in crops])[:, None]
    return np.ascontiguousarray(np.repeat(resized, channels, axis=1), dtype=np.float32)


def top1_accuracy(infer: Callable[[np.ndarray], np.ndarray], data: LabelledCrops,
                  input_shape: tuple[int, ...], chunk: int = CHUNK) -> float:
    """Fraction of crops whose highest logit is their label."""
    pixels = model_input(data.pixels, input_shape)
    predicted = np.concatenate([infer(np.ascontiguousarray(pixels[i:i + chunk])).argmax(1)
                                for i in range(0, len(pixels), chunk)])
    return float((predicted == data.labels).mean())
