"""Training data: the CK+, Oulu-CASIA and folder layouts, the authors' 8 crops, the cache, the splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_faces import shared_cache, shared_dataset, write_ck, write_folder, write_oulu

from edgefer.errors import InputError
from edgefer.spec import LABELS
from edgefer.train.data import crops as crops_module
from edgefer.train.data.crops import load_crops
from edgefer.train.data.datasets import LayoutOptions, read_dataset
from edgefer.train.data.faces import training_crops
from edgefer.train.data.splits import load_split, make_split, save_split


def test_ck_layout_labels_peaks_and_first_frames(tmp_path):
    write_ck(tmp_path, subjects=3, frames=5, labels=(1, 5), unlabelled=1)
    samples = read_dataset("ck", tmp_path)
    # per labelled sequence: frame 1 neutral, frames 3..5 the emotion; the unlabelled one is skipped
    assert len(samples) == 3 * 2 * 4
    by_id = {s.id: s for s in samples}
    assert by_id["cohn-kanade-images/S005/002/S005_002_00000005.png"].label == LABELS.index("happy")
    assert by_id["cohn-kanade-images/S005/002/S005_002_00000001.png"].label == LABELS.index("neutral")
    assert "cohn-kanade-images/S005/002/S005_002_00000002.png" not in by_id
    assert not any("/003/" in s.id for s in samples)
    assert {s.subject for s in samples} == {"S005", "S008", "S011"}
    two = read_dataset("ck", tmp_path, LayoutOptions(peak_frames=2, neutral_frames=0))
    assert len(two) == 3 * 2 * 2 and all(s.label != 0 for s in two)


def test_ck_refuses_a_bad_emotion_file(tmp_path):
    write_ck(tmp_path, subjects=1, frames=3, labels=(2,), unlabelled=0)
    (emotion,) = (tmp_path / "Emotion").rglob("*_emotion.txt")
    emotion.write_text("   9.0000000e+00\n")
    with pytest.raises(InputError, match="emotion code"):
        read_dataset("ck", tmp_path)
    with pytest.raises(InputError, match="not the CK\\+ layout"):
        read_dataset("ck", tmp_path / "Emotion")


def test_oulu_layout_one_folder_down(tmp_path):
    write_oulu(tmp_path / "OriginalImg", subjects=2, frames=5, illuminations=("Strong", "Dark"))
    samples = read_dataset("oulu", tmp_path)
    assert len(samples) == 2 * 6 * 4  # Strong only: 6 expressions x (1 neutral + 3 peak frames)
    assert {s.subject for s in samples} == {"P001", "P002"}
    happy = [s for s in samples if s.id.endswith("Happiness/004.jpeg")]
    assert happy and all(s.label == LABELS.index("happy") for s in happy)
    assert all(s.label == 0 for s in samples if s.id.endswith("/000.jpeg"))
    assert len(read_dataset("oulu", tmp_path, LayoutOptions(illumination="all"))) == 2 * 2 * 6 * 4
    with pytest.raises(InputError, match="modality"):
        read_dataset("oulu", tmp_path, LayoutOptions(modality="IR"))


def test_folder_layout_subject_regex(tmp_path):
    write_folder(tmp_path, subjects=3, per_class=1, labels=(0, 5, 6))
    (tmp_path / "sadness").rename(tmp_path / "Sad")  # synonyms and case are accepted
    samples = read_dataset("folder", tmp_path, LayoutOptions(subject_regex=r"^(?P<subject>s\d+)_"))
    assert {s.subject for s in samples} == {"s00", "s01", "s02"}
    assert sorted({s.label for s in samples}) == [0, 5, 6]
    assert all(s.subject == s.id for s in read_dataset("folder", tmp_path))  # no regex: one image, one subject
    with pytest.raises(InputError, match="does not match --subject-regex"):
        read_dataset("folder", tmp_path, LayoutOptions(subject_regex=r"^subject(\d+)"))
    (tmp_path / "bored").mkdir()
    with pytest.raises(InputError, match="unknown class folder"):
        read_dataset("folder", tmp_path)


def test_unknown_layout_and_missing_folder(tmp_path):
    with pytest.raises(InputError, match="unknown dataset layout"):
        read_dataset("fer2013", tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_dataset("ck", tmp_path / "nowhere")


#: The authors' 8 training windows (row, column) of 224x224 in the 256x256 face, in their order
#: (Candidates/Preprocessing.py), written out here rather than imported from the code under test.
AUTHORS_WINDOWS = ((0, 0), (0, 5), (0, 32), (5, 0), (32, 0), (5, 5), (32, 32), (5, 32))


def banded_face() -> np.ndarray:
    """A 256x256 image whose top-left pixel of each window is known: 0 where row or column < 5,
    100 where both are >= 5 but one is < 32, 200 where both are >= 32 (every window's lower right)."""
    image = np.full((256, 256), 100, np.uint8)
    image[32:, 32:] = 200
    image[:5, :] = image[:, :5] = 0
    return image


def test_training_crops_are_the_authors_windows(tmp_path):
    import cv2

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), banded_face())
    crops, found = training_crops(path, detector=None)
    assert crops.shape == (8, 84, 84) and crops.dtype == np.uint8 and not found
    corner = {(0, 0): 0, (0, 5): 0, (0, 32): 0, (5, 0): 0, (32, 0): 0, (5, 5): 100, (32, 32): 200, (5, 32): 100}
    assert [int(crop[0, 0]) for crop in crops] == [corner[w] for w in AUTHORS_WINDOWS]
    assert all(int(crop[-1, -1]) == 200 for crop in crops)
    assert (crops[6] == 200).all()  # window (32, 32) lies wholly in the 200 band: the inference crop
    assert training_crops(path, detector=None, size=42)[0].shape == (8, 42, 42)


def test_crop_cache_is_reused_and_follows_file_changes(tmp_path, monkeypatch):
    write_folder(tmp_path / "data", subjects=2, per_class=1, labels=(1, 5))
    samples = read_dataset("folder", tmp_path / "data")
    first = load_crops(samples, tmp_path / "cache", detect=False)
    assert first.pixels.shape == (len(samples), 8, 84, 84)
    assert len(list((tmp_path / "cache").glob("crops-*.npz"))) == 1

    def no_compute(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(crops_module, "_compute", no_compute)
        again = load_crops(samples, tmp_path / "cache", detect=False)
    np.testing.assert_array_equal(again.pixels, first.pixels)
    assert again.fingerprint == first.fingerprint
    samples[0].path.write_bytes(samples[1].path.read_bytes())
    changed = load_crops(samples, tmp_path / "cache", detect=False)
    assert changed.key != first.key
    np.testing.assert_array_equal(changed.pixels[0], changed.pixels[1])


def test_shared_ck_faces_go_through_the_detector():
    samples = read_dataset("ck", shared_dataset("ck"))
    crops = load_crops(samples, shared_cache())
    assert crops.pixels.shape == (len(samples), 8, 84, 84)
    assert crops.faces_found.dtype == bool  # the drawn faces may or may not look like faces to Haar


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 14), min_size=20, max_size=120), st.integers(2, 6), st.integers(0, 3))
def test_subject_split_never_puts_a_subject_in_train_and_test(subject_ids, folds, seed):
    subjects = [f"S{i:03d}" for i in subject_ids]
    if len(set(subjects)) < folds:
        with pytest.raises(InputError, match="subjects"):
            make_split(range(len(subjects)), [0] * len(subjects), subjects, "subject", folds, 0, seed)
        return
    ids = [str(i) for i in range(len(subjects))]
    for fold in range(folds):
        split = make_split(ids, [0] * len(ids), subjects, "subject", folds, fold, seed)
        train = {subjects[i] for i in split.train_indices()}
        test = {subjects[i] for i in split.test_indices()}
        assert test and train and not train & test
        assert len(split.train_indices()) + len(split.test_indices()) == len(ids)


def test_random_split_is_stratified_seeded_and_saved(tmp_path):
    labels = [i % 8 for i in range(203)]
    ids = [f"img{i}" for i in range(203)]
    split = make_split(ids, labels, ids, "random", 10, 3, seed=7)
    per_fold = np.zeros((10, 8), int)
    for label, fold in zip(labels, split.assignment, strict=True):
        per_fold[fold, label] += 1
    assert (per_fold.max(0) - per_fold.min(0)).max() <= 1
    assert np.ptp(per_fold.sum(1)) <= 1
    assert make_split(ids, labels, ids, "random", 10, 3, seed=7) == split
    assert make_split(ids, labels, ids, "random", 10, 3, seed=8).assignment != split.assignment
    save_split(split, tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == split
    assert json.loads((tmp_path / "split.json").read_text())["assignment"]["img5"] == split.assignment[5]


def test_split_refuses_bad_folds():
    with pytest.raises(InputError, match="out of range"):
        make_split(["a", "b"], [0, 1], ["a", "b"], "random", 2, 2)
    with pytest.raises(InputError, match="unknown split"):
        make_split(["a", "b"], [0, 1], ["a", "b"], "person", 2, 0)


def test_subject_split_of_a_folder_needs_subject_names(tmp_path):
    """Without --subject-regex every image would be its own subject: a random split called subject split."""
    from edgefer.train.data.options import DataOptions
    from edgefer.train.studies.grid import StudySettings, check_settings

    with pytest.raises(InputError, match="--split subject on a folder dataset needs --subject-regex"):
        DataOptions(root=tmp_path, dataset="folder")
    with pytest.raises(InputError, match="Or use --split random"):
        check_settings(StudySettings(study="pooling", data=str(tmp_path), dataset="folder"))
    DataOptions(root=tmp_path, dataset="folder", split="random")
    DataOptions(root=tmp_path, dataset="folder", layout=LayoutOptions(subject_regex=r"^(s\d+)_"))
