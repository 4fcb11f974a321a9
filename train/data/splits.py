"""k-fold splits of a dataset's samples (images; a sample's 8 crops always stay together).

- ``random``: images dealt to folds, stratified by label (the paper's "random split": a subject
  may appear in train and test).
- ``subject``: subjects dealt to folds, so no subject is ever in both train and test of a fold
  (the paper's "subject-independent split"); folds are balanced by image count.

Both are seeded. A split is saved beside the run (split.json: the fold of every sample id).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import InputError
from edgefer.fileio import atomic_write_text

SPLITS = ("random", "subject")


@dataclass(frozen=True)
class Split:
    """Fold ``fold`` of a ``folds``-fold split: ``assignment[i]`` is the fold of sample ``ids[i]``."""

    kind: str
    folds: int
    seed: int
    fold: int
    ids: tuple[str, ...]
    assignment: tuple[int, ...]

    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.assignment) != self.fold)

    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.assignment) == self.fold)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "folds": self.folds, "seed": self.seed, "fold": self.fold,
                "assignment": dict(zip(self.ids, self.assignment, strict=True))}


def make_split(ids: Sequence[str], labels: Sequence[int], subjects: Sequence[str], kind: str = "subject",
               folds: int = 10, fold: int = 0, seed: int = 0) -> Split:
    """Assign every sample to one of ``folds`` folds; fold ``fold`` is the test set."""
    if kind not in SPLITS:
        raise InputError(f"unknown split {kind!r}: expected one of {', '.join(SPLITS)}")
    if folds < 2:
        raise InputError(f"--folds {folds}: need at least 2 folds")
    if not 0 <= fold < folds:
        raise InputError(f"--fold {fold} out of range 0..{folds - 1}")
    rng = np.random.default_rng(seed)
    if kind == "random":
        assignment = _stratified(np.asarray(labels), folds, rng)
    else:
        assignment = _by_subject(list(subjects), folds, rng)
    return Split(kind, folds, seed, fold, tuple(ids), tuple(int(a) for a in assignment))


def _stratified(labels: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    if len(labels) < folds:
        raise InputError(f"{len(labels)} images cannot fill {folds} folds")
    assignment = np.empty(len(labels), np.int64)
    start = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        assignment[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds  # the next class continues where this one stopped
    return assignment


def _by_subject(subjects: list[str], folds: int, rng: np.random.Generator) -> np.ndarray:
    counts = Counter(subjects)
    if len(counts) < folds:
        raise InputError(f"{len(counts)} subjects cannot fill {folds} subject-independent folds "
                         "(use fewer --folds, or --split random)")
    names = sorted(counts)
    order = [names[i] for i in rng.permutation(len(names))]
    order.sort(key=lambda name: -counts[name])  # stable: equal sizes keep the seeded order
    sizes, fold_of = [0] * folds, {}
    for name in order:  # greedy: the largest subject left goes to the emptiest fold
        target = min(range(folds), key=lambda f: (sizes[f], f))
        fold_of[name] = target
        sizes[target] += counts[name]
    return np.array([fold_of[s] for s in subjects], np.int64)


def save_split(split: Split, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps(split.to_dict(), indent=1) + "\n")


def load_split(path: str | os.PathLike) -> Split:
    data = json.loads(Path(path).read_text())
    ids = tuple(data["assignment"])
    return Split(data["kind"], data["folds"], data["seed"], data["fold"], ids,
                 tuple(data["assignment"][i] for i in ids))
