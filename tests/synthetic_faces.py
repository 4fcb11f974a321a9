"""Small synthetic face datasets in the real CK+, Oulu-CASIA and folder-per-class layouts.

Each image is a drawn gray face (oval, brows, eyes, nose, mouth) whose expression changes brow
height and slant, eye openness and the mouth's curvature, opening, width and symmetry, so the 8
classes are learnable. Subjects differ in face size, position, skin and background brightness
and line width; every frame gets a little jitter and pixel noise. Sequences go from neutral
(first frame) to the expression's peak (last frame), as in CK+ and Oulu-CASIA.

Layouts written (the real ones, shrunk):
- CK+: ``cohn-kanade-images/S005/001/S005_001_00000001.png`` and, for labelled sequences,
  ``Emotion/S005/001/S005_001_0000000N_emotion.txt`` holding ``   3.0000000e+00`` (N = last frame).
- Oulu-CASIA: ``VL/Strong/P001/Happiness/000.jpeg`` (also ``NI`` and other illuminations on request).
- folder: ``happy/s03_007.png`` (subject id in the file name, for ``--subject-regex``).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LABELS = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
OULU_NAMES = {"Anger": 1, "Disgust": 3, "Fear": 4, "Happiness": 5, "Sadness": 6, "Surprise": 7}

#: Expression parameters per class: brow raise, brow slant (+: inner ends down), eye openness,
#: mouth curvature (+: smile), mouth opening, mouth width, mouth asymmetry, nose wrinkle.
EXPRESSIONS = np.array([
    [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0],   # neutral
    [-0.6, 1.0, 0.5, -0.2, 0.0, 0.8, 0.0, 0.0],  # anger
    [0.0, 0.0, 0.9, 0.0, 0.0, 0.9, 1.0, 0.0],   # contempt
    [-0.3, 0.5, 0.5, -0.6, 0.3, 0.9, 0.0, 1.0],  # disgust
    [0.6, -0.7, 1.7, -0.3, 0.6, 1.1, 0.0, 0.0],  # fear
    [0.1, 0.0, 0.8, 1.0, 0.3, 1.3, 0.0, 0.0],   # happy
    [0.2, -1.0, 0.8, -0.9, 0.0, 0.9, 0.0, 0.0],  # sadness
    [1.0, 0.0, 1.9, 0.0, 1.1, 0.7, 0.0, 0.0],   # surprise
])


@dataclass(frozen=True)
class Subject:
    """How one synthetic person looks: geometry and tones that stay fixed across their images."""

    scale: float
    dx: float
    dy: float
    skin: int
    background: int
    ink: int
    thickness: int

    @classmethod
    def random(cls, rng: np.random.Generator) -> Subject:
        return cls(scale=rng.uniform(0.82, 0.98), dx=rng.uniform(-0.05, 0.05), dy=rng.uniform(-0.04, 0.04),
                   skin=int(rng.integers(150, 215)), background=int(rng.integers(20, 90)),
                   ink=int(rng.integers(10, 60)), thickness=int(rng.integers(1, 3)))


def draw_face(label: int, subject: Subject, rng: np.random.Generator, size: tuple[int, int] = (160, 120),
              intensity: float = 1.0) -> np.ndarray:
    """One gray face (H x W uint8) showing ``label`` at ``intensity`` (0: neutral, 1: peak)."""
    width, height = size
    p = EXPRESSIONS[0] + intensity * (EXPRESSIONS[label] - EXPRESSIONS[0])
    brow_raise, brow_slant, eye_open, curve, mouth_open, mouth_width, asym, wrinkle = p
    image = np.full((height, width), subject.background, np.float32)
    cx = width / 2 + (subject.dx + rng.uniform(-0.015, 0.015)) * width
    cy = height / 2 + (subject.dy + rng.uniform(-0.015, 0.015)) * height
    a, b = 0.40 * height * subject.scale, 0.48 * height * subject.scale  # face half-width, half-height
    ink, t = subject.ink, subject.thickness
    cv2.ellipse(image, _pt(cx, cy), _pt(a, b), 0, 0, 360, subject.skin, -1, cv2.LINE_AA)
    for side in (-1, 1):
        ex, ey = cx + side * 0.38 * a, cy - 0.18 * b
        eye_h = max(0.07 * b * eye_open, 1.0)
        cv2.ellipse(image, _pt(ex, ey), _pt(0.17 * a, eye_h), 0, 0, 360, ink, -1, cv2.LINE_AA)
        by = ey - 0.22 * b - brow_raise * 0.10 * b
        inner, outer = ex - side * 0.20 * a, ex + side * 0.22 * a
        slant = brow_slant * 0.08 * b
        cv2.line(image, _pt(inner, by + slant), _pt(outer, by - slant), ink, t + 1, cv2.LINE_AA)
    cv2.line(image, _pt(cx, cy - 0.02 * b), _pt(cx - 0.06 * a, cy + 0.18 * b), ink, t, cv2.LINE_AA)
    for k in range(int(round(2 * wrinkle))):
        wy = cy + (0.02 + 0.06 * k) * b
        cv2.line(image, _pt(cx - 0.12 * a, wy), _pt(cx + 0.12 * a, wy + 0.02 * b), ink, t, cv2.LINE_AA)
    _draw_mouth(image, cx, cy + 0.45 * b, 0.36 * a * mouth_width, curve * 0.14 * b, mouth_open * 0.10 * b,
                asym * 0.12 * b, ink, t + 1)
    image += rng.normal(0.0, 5.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _draw_mouth(image: np.ndarray, mx: float, my: float, half: float, curve: float, opening: float,
                asym: float, ink: int, thickness: int) -> None:
    """A parabola through the corners (curve > 0 lifts them: a smile), optionally opened."""
    xs = np.linspace(-1.0, 1.0, 25)
    lift = curve * xs**2 + asym * np.clip(xs, 0, None)
    upper = np.stack([mx + half * xs, my - lift - opening * (1 - xs**2)], 1)
    lower = np.stack([mx + half * xs, my - lift + opening * (1 - xs**2)], 1)
    if opening > 0.5:
        polygon = np.concatenate([upper, lower[::-1]]).round().astype(np.int32)
        cv2.fillPoly(image, [polygon], ink, cv2.LINE_AA)
    cv2.polylines(image, [upper.round().astype(np.int32)], False, ink, thickness, cv2.LINE_AA)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _subjects(count: int, rng: np.random.Generator) -> list[Subject]:
    return [Subject.random(rng) for _ in range(count)]


def write_ck(root: Path, subjects: int = 8, frames: int = 5, labels: tuple[int, ...] = tuple(range(1, 8)),
             unlabelled: int = 1, seed: int = 0, size: tuple[int, int] = (160, 120)) -> Path:
    """CK+ layout: one sequence per subject and emotion, plus ``unlabelled`` sequences without a label."""
    rng = np.random.default_rng(seed)
    for s, subject in enumerate(_subjects(subjects, rng)):
        sid = f"S{5 + 3 * s:03d}"
        sequences = [(label, True) for label in labels] + [(int(rng.integers(1, 8)), False)] * unlabelled
        for q, (label, labelled) in enumerate(sequences, start=1):
            seq = f"{q:03d}"
            folder = root / "cohn-kanade-images" / sid / seq
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(1, frames + 1):
                face = draw_face(label, subject, rng, size, intensity=(f - 1) / (frames - 1))
                cv2.imwrite(str(folder / f"{sid}_{seq}_{f:08d}.png"), face)
            if labelled:
                emotion = root / "Emotion" / sid / seq / f"{sid}_{seq}_{frames:08d}_emotion.txt"
                emotion.parent.mkdir(parents=True, exist_ok=True)
                emotion.write_text(f"   {float(label):.7e}\n")
    return root


def write_oulu(root: Path, subjects: int = 6, frames: int = 5, modalities: tuple[str, ...] = ("VL",),
               illuminations: tuple[str, ...] = ("Strong",), seed: int = 0,
               size: tuple[int, int] = (160, 120)) -> Path:
    """Oulu-CASIA layout: MODALITY/ILLUMINATION/P001/Happiness/000.jpeg (colour JPEGs)."""
    rng = np.random.default_rng(seed)
    people = _subjects(subjects, rng)
    for modality in modalities:
        for light in illuminations:
            for p, subject in enumerate(people, start=1):
                for name, label in OULU_NAMES.items():
                    folder = root / modality / light / f"P{p:03d}" / name
                    folder.mkdir(parents=True, exist_ok=True)
                    for f in range(frames):
                        face = draw_face(label, subject, rng, size, intensity=f / (frames - 1))
                        cv2.imwrite(str(folder / f"{f:03d}.jpeg"), cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))
    return root


def write_folder(root: Path, subjects: int = 6, per_class: int = 2, labels: tuple[int, ...] = tuple(range(8)),
                 seed: int = 0, size: tuple[int, int] = (96, 96)) -> Path:
    """Folder-per-class layout: ``happy/s03_001.png``; the subject is ``s03`` (regex ``^(s\\d+)_``)."""
    rng = np.random.default_rng(seed)
    for s, subject in enumerate(_subjects(subjects, rng)):
        for label in labels:
            folder = root / LABELS[label]
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                face = draw_face(label, subject, rng, size, intensity=rng.uniform(0.8, 1.0))
                cv2.imwrite(str(folder / f"s{s:02d}_{i:03d}.png"), face)
    return root


def _write_shared(kind: str, root: Path) -> Path:
    """The datasets the train tests share: CK+ big enough to learn on, small Oulu-CASIA (one folder
    down, as in the distribution's OriginalImg/) and folder sets for the layout, resume and teacher tests."""
    if kind == "ck":
        write_ck(root, subjects=10, frames=5)
    elif kind == "oulu":
        write_oulu(root / "OriginalImg", subjects=5, frames=4)
    else:
        write_folder(root, subjects=4, per_class=2)
    return root


@functools.cache
def shared_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="edgefer-synthetic-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def shared_dataset(kind: str) -> Path:
    """A synthetic dataset of layout ``kind`` (ck, oulu, folder), written on first use."""
    return _write_shared(kind, shared_root() / kind)


def shared_cache() -> Path:
    """One crop cache for the whole test process: each dataset is preprocessed once."""
    return shared_root() / "crop-cache"
