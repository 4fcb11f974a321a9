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
from edgefer.spec import LABELS, label_index

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
    from edgefer.convert import calibration

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: --data must be a folder with one sub-folder per label")
    unknown = [p.name for p in folder.iterdir()
               if p.is_dir() and not p.name.startswith(".") and label_index(p.name) is None]
    if unknown:
        raise InputError(f"{folder}: sub-folders {', '.join(sorted(unknown))} are not labels; expected names "
                         f"from {', '.join(LABELS)}")
    items = calibration.labelled_images(folder)
    if not items:
        raise InputError(f"{folder}: no images in its label sub-folders ({', '.join(LABELS)})")
    return items


def load_labelled_folder(folder: str | os.PathLike, size: int = 84) -> LabelledCrops:
    """One face crop per image, as ``Recognizer.predict`` would take it, with its label."""
    from edgefer.convert.calibration import labelled_crops

    return LabelledCrops(*labelled_crops(labelled_images(folder), size))


def top1_accuracy(infer: Callable[[np.ndarray], np.ndarray], data: LabelledCrops,
                  input_shape: tuple[int, ...], chunk: int = CHUNK) -> float:
    """Fraction of crops whose highest logit is their label."""
    from edgefer.convert.calibration import model_input

    pixels = model_input(data.pixels, input_shape[0], input_shape[-1])
    predicted = np.concatenate([infer(np.ascontiguousarray(pixels[i:i + chunk])).argmax(1)
                                for i in range(0, len(pixels), chunk)])
    return float((predicted == data.labels).mean())
