"""Issue 18: a run that collapses to one class is detected and labelled wherever its accuracy shows
(metrics.json, the summary line, the study's tables); the robust recipe trains the members that
collapse with the authors' recipe (v-XXS, p1-XXS) above chance on every seed tried."""

from __future__ import annotations

import csv
import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # training runs

from synthetic_faces import shared_cache, shared_dataset, write_folder  # noqa: E402

from edgefer.cli.train import _print_summary  # noqa: E402
from edgefer.spec import LABELS  # noqa: E402
from edgefer.train.data.datasets import LayoutOptions  # noqa: E402
from edgefer.train.data.options import DataOptions  # noqa: E402
from edgefer.train.fit.settings import LoopConfig, StudentRun  # noqa: E402
from edgefer.train.fit.student import train_student  # noqa: E402
from edgefer.train.models.weights import load_weights  # noqa: E402
from edgefer.train.studies.grid import StudySettings  # noqa: E402
from edgefer.train.studies.report import study_results, write_reports  # noqa: E402

CHANCE = 1 / len(LABELS)
SUBJECTS = LayoutOptions(subject_regex=r"^(s\d+)_")


def tiny(fold: int) -> DataOptions:
    return DataOptions(root=shared_dataset("folder"), dataset="folder", layout=SUBJECTS, split="random", folds=2,
                       fold=fold, cache_dir=shared_cache())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A pooling study folder of one cell (v-xxs) and 2 folds, both real runs of 3 epochs at lr 1e-3: fold 0
    with the authors' recipe (it collapses: v-XXS loses all 16 fc1 units), fold 1 with the robust one."""
    root = tmp_path_factory.mktemp("study")
    runs = {}
    for fold, recipe in ((0, "authors"), (1, "robust")):
        out = root / "runs" / "v-xxs" / f"fold-{fold}"
        runs[fold] = train_student(StudentRun(data=tiny(fold), out=out, loop=LoopConfig(epochs=3, lr=1e-3),
                                              model="v-xxs", recipe=recipe))
    settings = StudySettings(study="pooling", data=str(shared_dataset("folder")), dataset="folder", split="random",
                             folds=2, epochs=3, variants=("v",), sizes=("xxs",), lr=1e-3, subject_regex=r"^(s\d+)_")
    return root, settings, runs


def test_a_collapsed_run_says_so_with_its_evidence(study, capsys):
    root, _, runs = study
    metrics = runs[0]
    assert metrics["recipe"] == "authors" and metrics["collapsed"] is True
    evidence = metrics["collapse"]
    assert evidence["dead_fc1"] == 1.0 or evidence["majority_share"] >= 0.95, evidence
    assert evidence["fc1_units"] == 16 and evidence["reason"]
    assert json.loads((root / "runs/v-xxs/fold-0/metrics.json").read_text()) == metrics
    _, spec = load_weights(root / "runs/v-xxs/fold-0/model.safetensors")
    assert spec.extra["collapsed"] == evidence["reason"] and spec.extra["recipe"] == "authors"
    _print_summary(metrics, root / "runs/v-xxs/fold-0")
    out, err = capsys.readouterr()
    assert f"COLLAPSED: {evidence['reason']}" in out.splitlines()[0]
    assert "--recipe robust" in err


def test_a_trained_run_is_not_marked(study, capsys):
    root, _, runs = study
    metrics = runs[1]
    assert metrics["recipe"] == "robust" and metrics["collapsed"] is False, metrics["collapse"]
    assert metrics["collapse"]["reason"] is None and metrics["collapse"]["dead_fc1"] < 1.0
    _print_summary(metrics, root / "runs/v-xxs/fold-1")
    assert "COLLAPSED" not in capsys.readouterr().out


def test_the_study_tables_count_collapsed_folds_apart(study):
    root, settings, runs = study
    write_reports(settings, root, study_results(settings, root), [])
    (cell,) = json.loads((root / "results.json").read_text())["cells"]
    assert (cell["folds_finished"], cell["folds_trained"], cell["folds_collapsed"]) == (2, 1, 1)
    assert cell["collapsed_folds"] == [0]
    assert cell["mean"] == pytest.approx(runs[1]["test_accuracy"]) and cell["std"] == 0.0
    markdown = (root / "pooling.md").read_text()
    assert "recipe `authors`" in markdown
    assert f"{100 * runs[1]['test_accuracy']:.2f} ± 0.00% (1/2, 1 collapsed)" in markdown
    rows = {r["model"]: r for r in csv.DictReader((root / "pooling.csv").open())}
    assert (rows["v-xxs"]["folds_trained"], rows["v-xxs"]["folds_collapsed"], rows["v-xxs"]["recipe"]) == \
        ("1", "1", "authors")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """8 subjects x 8 classes x 3 faces: the set tools/collapse_study.py measures on."""
    root = tmp_path_factory.mktemp("faces")
    write_folder(root / "faces", subjects=8, per_class=3, seed=0)
    return root


@pytest.mark.parametrize("model", ["v-xxs", "p1-xxs"])
def test_robust_recipe_trains_what_the_authors_recipe_collapses(faces, model):
    """The authors' lr 1e-4 and dropout 0.5, 8 epochs (about 150 steps), subject-independent fold 0 of 5."""
    data = DataOptions(root=faces / "faces", dataset="folder", layout=SUBJECTS, split="subject", folds=5, fold=0,
                       cache_dir=faces / "cache")
    for seed in (0, 1, 2):
        metrics = train_student(StudentRun(data=data, out=faces / f"{model}-{seed}",
                                           loop=LoopConfig(epochs=8, seed=seed), model=model, recipe="robust"))
        assert not metrics["collapsed"], (seed, metrics["collapse"])
        assert metrics["test_accuracy"] > 1.5 * CHANCE, (seed, metrics["test_accuracy"])
