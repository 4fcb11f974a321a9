"""A dataset on disk -> one fold's training and test tensors in memory (the 8 crops of each image).

Shared by the teacher and the students, so both see exactly the same crops and the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgefer.train.data.crops import CropSet, Progress, load_crops
from edgefer.train.data.datasets import read_dataset
from edgefer.train.data.options import DataOptions
from edgefer.train.data.splits import Split, make_split
from edgefer.train.fit.loop import TrainData


@dataclass(frozen=True)
class FoldData:
    crops: CropSet
    split: Split
    train: TrainData
    test: TrainData
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]

    def fingerprint(self) -> dict[str, object]:
        """What a run trained on: the data (pixels, labels, subjects) and the split."""
        return {"data": self.crops.fingerprint, "split": self.split.kind, "folds": self.split.folds,
                "fold": self.split.fold, "split_seed": self.split.seed}

    def summary(self) -> dict[str, object]:
        n = self.crops.crops_per_sample
        return {"images": len(self.crops.ids), "subjects": len(set(self.crops.subjects)),
                "train_images": len(self.train_ids), "test_images": len(self.test_ids),
                "train_crops": len(self.train_ids) * n, "test_crops": len(self.test_ids) * n,
                "faces_detected": int(self.crops.faces_found.sum())}


def load_fold(options: DataOptions, progress: Progress | None = None) -> FoldData:
    samples = read_dataset(options.dataset, options.root, options.layout)
    crops = load_crops(samples, options.cache_dir, detect=options.detect, progress=progress)
    split = make_split(crops.ids, crops.labels, crops.subjects, options.split, options.folds, options.fold,
                       options.split_seed)
    train_index, test_index = split.train_indices(), split.test_indices()
    return FoldData(crops, split, _tensors(crops, train_index), _tensors(crops, test_index),
                    tuple(crops.ids[i] for i in train_index), tuple(crops.ids[i] for i in test_index))


def _tensors(crops: CropSet, index: np.ndarray) -> TrainData:
    """Crop-level tensors: inputs (n * 8, 1, S, S) uint8, each image's crops consecutive; labels (n * 8,)."""
    pixels = crops.pixels[index]
    n, per, size = pixels.shape[0], pixels.shape[1], pixels.shape[2]
    inputs = torch.from_numpy(np.ascontiguousarray(pixels)).reshape(n * per, 1, size, size)
    labels = torch.from_numpy(crops.labels[index]).repeat_interleave(per)
    return TrainData(inputs, labels)


def image_accuracy(logits: torch.Tensor, labels: torch.Tensor, crops_per_image: int) -> float:
    """Accuracy per image: the mean logits of its crops decide (crop-level accuracy is the authors' figure)."""
    per_image = logits.reshape(-1, crops_per_image, logits.shape[1]).mean(1)
    return float((per_image.argmax(1) == labels[::crops_per_image]).float().mean())
