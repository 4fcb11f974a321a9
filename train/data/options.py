"""Which data a run reads: the dataset and its layout, the split and the fold (no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgefer.train.data.datasets import LayoutOptions, check_subjects_named


@dataclass(frozen=True, kw_only=True)
class DataOptions:
    root: Path
    dataset: str  # ck, oulu or folder
    layout: LayoutOptions = field(default_factory=LayoutOptions)
    split: str = "subject"
    folds: int = 10
    fold: int = 0
    split_seed: int = 0
    detect: bool = True  # Haar face detection (False: every image is already a face crop)
    cache_dir: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        check_subjects_named(self.dataset, self.split, self.layout.subject_regex)

    @classmethod
    def from_dict(cls, data: dict) -> DataOptions:
        """The inverse of ``dataclasses.asdict`` (paths as strings)."""
        values = {**data, "root": Path(data["root"]), "layout": LayoutOptions(**data["layout"])}
        return cls(**values)
