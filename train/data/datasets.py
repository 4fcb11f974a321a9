"""Dataset layouts -> a list of samples (image path, label, subject). No pixels are read here.

- ``ck``: CK+ as distributed. ``cohn-kanade-images/S005/001/S005_001_00000011.png`` and, for the
  327 labelled sequences, ``Emotion/S005/001/S005_001_00000011_emotion.txt`` holding one float code
  (0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise: the order of
  edgefer.spec.LABELS). The last ``peak_frames`` frames of a labelled sequence carry its emotion and
  its first ``neutral_frames`` frames are neutral; unlabelled sequences are skipped.
- ``oulu``: Oulu-CASIA NIR&VIS as distributed: ``VL/Strong/P001/Happiness/000.jpeg`` (modality
  VL or NI, illumination Strong, Weak or Dark, subject, one of six expressions), either at the root
  or one folder down (``OriginalImg/VL/...``). Each sequence starts neutral and ends at the peak:
  last ``peak_frames`` frames labelled, first ``neutral_frames`` frames neutral.
- ``folder``: ``ROOT/<class>/**/image`` with class folders named after the labels (or a common
  synonym: angry, happiness, sad, surprised...); ``subject_regex`` pulls the subject id out of
  each file name (named group ``subject``, else group 1, else the whole match).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edgefer.errors import InputError
from edgefer.imagefile import IMAGE_SUFFIXES
from edgefer.spec import LABEL_SYNONYMS, LABELS, label_index

DATASETS = ("ck", "oulu", "folder")
OULU_EXPRESSIONS = {"anger": 1, "disgust": 3, "fear": 4, "happiness": 5, "sadness": 6, "surprise": 7}
OULU_MODALITIES = ("VL", "NI")
OULU_ILLUMINATIONS = ("Strong", "Weak", "Dark")


@dataclass(frozen=True)
class Sample:
    """One labelled image: ``id`` is its path relative to the dataset root (POSIX), unique and stable."""

    id: str
    path: Path
    label: int
    subject: str


@dataclass(frozen=True)
class LayoutOptions:
    """How a layout becomes samples; each field applies to the layouts its comment names."""

    subject_regex: str | None = None  # folder
    peak_frames: int = 3  # ck, oulu
    neutral_frames: int = 1  # ck, oulu
    modality: str = "VL"  # oulu: VL or NI
    illumination: str = "Strong"  # oulu: Strong, Weak, Dark or all


def read_dataset(kind: str, root: str | os.PathLike, options: LayoutOptions | None = None) -> list[Sample]:
    """The samples of a dataset in layout ``kind`` (ck, oulu, folder), sorted by id."""
    options = options or LayoutOptions()
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    if options.peak_frames < 1 or options.neutral_frames < 0:
        raise InputError("peak frames must be >= 1 and neutral frames >= 0")
    if kind == "ck":
        samples = read_ck(root, options.peak_frames, options.neutral_frames)
    elif kind == "oulu":
        samples = read_oulu(root, options.modality, options.illumination, options.peak_frames,
                            options.neutral_frames)
    elif kind == "folder":
        samples = read_folder(root, options.subject_regex)
    else:
        raise InputError(f"unknown dataset layout {kind!r}: expected one of {', '.join(DATASETS)}")
    if not samples:
        raise InputError(f"{root}: no labelled images found in the {kind} layout")
    return sorted(samples, key=lambda s: s.id)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _sequence_samples(root: Path, frames: list[Path], label: int, subject: str, peak: int,
                      neutral: int) -> list[Sample]:
    """First ``neutral`` frames as neutral, last ``peak`` frames as ``label``; never one frame twice."""
    first = frames[:neutral]
    last = [f for f in frames[-peak:] if f not in first]
    return ([Sample(f.relative_to(root).as_posix(), f, 0, subject) for f in first]
            + [Sample(f.relative_to(root).as_posix(), f, label, subject) for f in last])


def read_ck(root: Path, peak_frames: int = 3, neutral_frames: int = 1) -> list[Sample]:
    images, emotions = root / "cohn-kanade-images", root / "Emotion"
    if not images.is_dir() or not emotions.is_dir():
        raise InputError(f"{root}: not the CK+ layout (expected cohn-kanade-images/ and Emotion/ folders)")
    samples = []
    for emotion_file in sorted(emotions.glob("*/*/*_emotion.txt")):
        subject, sequence = emotion_file.parent.parent.name, emotion_file.parent.name
        label = _ck_code(emotion_file)
        frames = _images(images / subject / sequence) if (images / subject / sequence).is_dir() else []
        if not frames:
            raise InputError(f"{emotion_file}: no images in cohn-kanade-images/{subject}/{sequence}")
        samples += _sequence_samples(root, frames, label, subject, peak_frames, neutral_frames)
    return samples


def _ck_code(path: Path) -> int:
    text = path.read_text(errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path}: expected one emotion code like '3.0000000e+00', got {text[:40]!r}") from None
    if value != int(value) or not 0 <= value < len(LABELS):
        raise InputError(f"{path}: emotion code {text} is not one of 0..{len(LABELS) - 1}")
    return int(value)


def read_oulu(root: Path, modality: str = "VL", illumination: str = "Strong", peak_frames: int = 3,
              neutral_frames: int = 1) -> list[Sample]:
    if modality not in OULU_MODALITIES:
        raise InputError(f"Oulu-CASIA modality {modality!r}: expected one of {', '.join(OULU_MODALITIES)}")
    lights = OULU_ILLUMINATIONS if illumination.lower() == "all" else (illumination.capitalize(),)
    if lights[0] not in OULU_ILLUMINATIONS:
        raise InputError(f"Oulu-CASIA illumination {illumination!r}: expected "
                         f"{', '.join(OULU_ILLUMINATIONS)} or all")
    base = _oulu_base(root) / modality
    if not base.is_dir():
        present = [m for m in OULU_MODALITIES if (base.parent / m).is_dir()]
        raise InputError(f"{base}: no {modality} images here (found {', '.join(present)}); pass --modality")
    samples = []
    for light in lights:
        for person in sorted(p for p in (base / light).glob("P*") if p.is_dir()):
            for expression in sorted(p for p in person.iterdir() if p.is_dir()):
                label = OULU_EXPRESSIONS.get(expression.name.lower())
                if label is None:
                    raise InputError(f"{expression}: unknown Oulu-CASIA expression folder, expected one of "
                                     f"{', '.join(n.capitalize() for n in OULU_EXPRESSIONS)}")
                frames = _images(expression)
                if frames:
                    samples += _sequence_samples(root, frames, label, person.name, peak_frames, neutral_frames)
    return samples


def _oulu_base(root: Path) -> Path:
    """The folder holding VL/ and NI/: the root itself, or the one sub-folder that does."""
    if any((root / m).is_dir() for m in OULU_MODALITIES):
        return root
    found = [d for d in sorted(root.iterdir()) if d.is_dir() and any((d / m).is_dir() for m in OULU_MODALITIES)]
    if len(found) != 1:
        where = f"several do: {', '.join(d.name for d in found)}; pass one of them" if found else "none found"
        raise InputError(f"{root}: not the Oulu-CASIA layout (expected VL/ or NI/ folders here or one "
                         f"folder down; {where})")
    return found[0]


def check_subjects_named(dataset: str, split: str, subject_regex: str | None) -> None:
    """A subject split of a folder dataset needs the subjects named: one subject per image would be a random
    split that puts the same person in train and test, under a subject-independent name."""
    if dataset == "folder" and split == "subject" and not subject_regex:
        raise InputError(
            "--split subject on a folder dataset needs --subject-regex to name each image's subject "
            "from its file name (e.g. --subject-regex '^(s\\d+)_' for s01_happy_3.png); without it every "
            "image would be its own subject and the same person would land in train and test. "
            "Or use --split random")


def read_folder(root: Path, subject_regex: str | None = None) -> list[Sample]:
    pattern = _compile(subject_regex) if subject_regex else None
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = label_index(folder.name)
        if label is None:
            raise InputError(f"{folder}: unknown class folder; expected one of {', '.join(LABELS)} "
                             f"(or {', '.join(sorted(LABEL_SYNONYMS))})")
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            sample_id = path.relative_to(root).as_posix()
            subject = _subject(pattern, path) if pattern else sample_id
            samples.append(Sample(sample_id, path, label, subject))
    return samples


def _compile(regex: str) -> re.Pattern:
    try:
        return re.compile(regex)
    except re.error as err:
        raise InputError(f"--subject-regex {regex!r} is not a valid regular expression: {err}") from None


def _subject(pattern: re.Pattern, path: Path) -> str:
    match = pattern.search(path.name)
    if match is None:
        raise InputError(f"{path}: file name does not match --subject-regex {pattern.pattern!r}")
    if "subject" in pattern.groupindex:
        return match.group("subject")
    return match.group(1) if pattern.groups else match.group(0)
