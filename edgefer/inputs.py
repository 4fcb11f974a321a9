"""What `predict` was given: image files, folders of images, video files; folders expanded, sorted."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from edgefer.errors import InputError
from edgefer.imagefile import IMAGE_SUFFIXES
from edgefer.video import is_video


def expand_inputs(paths: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """The paths in order, each folder replaced by its image files sorted by path (sub-folders too with
    ``recursive``; hidden files and folders skipped). A folder without images is an InputError."""
    expanded: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            expanded.append(path)
            continue
        candidates = path.rglob("*") if recursive else path.iterdir()
        found = sorted(f for f in candidates if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in f.relative_to(path).parts))
        if not found:
            hint = "" if recursive else " (--recursive looks into its sub-folders)"
            raise InputError(f"{path}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}){hint}")
        expanded += found
    return expanded


def split_videos(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(images, videos) by file suffix."""
    videos = [p for p in paths if is_video(p)]
    return [p for p in paths if not is_video(p)], videos
