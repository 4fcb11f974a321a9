"""Preprocess a dataset once: every sample's 8 training crops, cached on disk, held in memory to train.

The cache file is keyed by a hash of the preprocessing version and options and of every sample's
id and file contents, so an edited, added or removed image, or a new preprocessing version, makes
a new entry; it is written atomically (a .npz without pickled objects).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer import fileio
from edgefer.fileio import atomic_path
from edgefer.preprocess import HAAR_MIN_NEIGHBORS, HAAR_SCALE_FACTOR, FaceDetector
from edgefer.train.data.datasets import Sample
from edgefer.train.data.faces import AUTHORS_OFFSETS, PREPROCESS_VERSION, training_crops

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CropSet:
    """The crops of every sample: ``pixels`` (N, 8, S, S) uint8, in the order of ``ids``."""

    pixels: np.ndarray
    labels: np.ndarray
    ids: tuple[str, ...]
    subjects: tuple[str, ...]
    faces_found: np.ndarray
    key: str  # the cache key: pixels depend on nothing else

    @property
    def crops_per_sample(self) -> int:
        return self.pixels.shape[1]

    @property
    def fingerprint(self) -> str:
        """Identifies pixels, labels and subjects together: runs and teacher logits are checked against it."""
        text = json.dumps([self.key, self.labels.tolist(), list(self.subjects)])
        return hashlib.sha256(text.encode()).hexdigest()


def default_cache_dir() -> Path:
    return fileio.cache_dir("crops")


def cache_key(samples: Sequence[Sample], detect: bool, size: int) -> str:
    digest = hashlib.sha256()
    options = {"version": PREPROCESS_VERSION, "size": size, "offsets": AUTHORS_OFFSETS, "detect": detect,
               "haar": [HAAR_SCALE_FACTOR, HAAR_MIN_NEIGHBORS] if detect else None}
    digest.update(json.dumps(options).encode())
    for sample in samples:
        digest.update(sample.id.encode() + b"\0" + hashlib.sha256(sample.path.read_bytes()).digest())
    return digest.hexdigest()


def load_crops(samples: Sequence[Sample], cache_dir: str | os.PathLike | None = None, *, detect: bool = True,
               size: int = 84, progress: Progress | None = None) -> CropSet:
    """Crops of ``samples`` from the cache, or computed (face detection, 8 windows) and cached."""
    key = cache_key(samples, detect, size)
    path = Path(cache_dir or default_cache_dir()) / f"crops-{key[:32]}.npz"
    ids = tuple(s.id for s in samples)
    cached = _read(path, key, ids)
    if cached is None:
        cached = _compute(samples, detect, size, progress)
        _write(path, key, ids, *cached)
    elif progress:
        progress(len(samples), len(samples))
    pixels, found = cached
    return CropSet(pixels, np.array([s.label for s in samples], np.int64), ids,
                   tuple(s.subject for s in samples), found, key)


def _compute(samples: Sequence[Sample], detect: bool, size: int,
             progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    detector = FaceDetector() if detect else None
    pixels = np.zeros((len(samples), len(AUTHORS_OFFSETS), size, size), np.uint8)
    found = np.zeros(len(samples), bool)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = pool.map(lambda s: training_crops(s.path, detector, size), samples)
        for index, (crops, face) in enumerate(results):
            pixels[index], found[index] = crops, face
            if progress:
                progress(index + 1, len(samples))
    return pixels, found


def _read(path: Path, key: str, ids: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, unreadable or not for these samples."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key or tuple(data["ids"].tolist()) != ids:
                return None
            return data["pixels"], data["faces_found"]
    except (OSError, ValueError, KeyError):
        return None


def _write(path: Path, key: str, ids: tuple[str, ...], pixels: np.ndarray, found: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, key=np.array(key), ids=np.array(ids, dtype=str), pixels=pixels, faces_found=found)
