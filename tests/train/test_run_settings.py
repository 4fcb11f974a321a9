"""A run's settings are keyword-only dataclasses that survive JSON unchanged: a study writes them, a worker
process trains from them (no command line in between)."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from edgefer.errors import InputError
from edgefer.train.data.datasets import LayoutOptions
from edgefer.train.data.options import DataOptions
from edgefer.train.fit.settings import LoopConfig, StudentRun, TeacherRun, run_from_dict, run_to_dict
from edgefer.train.studies.execute import run_settings
from edgefer.train.studies.grid import StudySettings, tasks
from edgefer.train.studies.worker import RunJob, main, read_job, write_job

DATA = DataOptions(root=Path("/data/ck"), dataset="folder", layout=LayoutOptions(subject_regex=r"^(s\d+)_"),
                   split="random", folds=4, fold=3, split_seed=7, detect=False, cache_dir="/cache")


@pytest.mark.parametrize("run", [
    StudentRun(data=DATA, out=Path("/runs/a"), loop=LoopConfig(epochs=5, lr=1e-3, seed=2), model="p1-s",
               dropout=0.25, teacher_logits=Path("/runs/t/teacher_logits.safetensors"), temperature=4.0, lam=0.3),
    StudentRun(data=DATA, out=Path("/runs/b"), loop=LoopConfig(epochs=1)),
    TeacherRun(data=DATA, out=Path("/runs/t"), loop=LoopConfig(epochs=2, eval_batch_size=64), input_size=139,
               imagenet=Path("/weights/inception.pth")),
])
def test_settings_round_trip_through_json(run, tmp_path):
    assert run_from_dict(json.loads(json.dumps(run_to_dict(run)))) == run
    job = write_job(RunJob(run, threads=3), tmp_path / "job.json")
    assert read_job(job) == RunJob(run, 3)


def test_settings_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        StudentRun(DATA, Path("/runs/a"), LoopConfig(epochs=1))
    with pytest.raises(TypeError):
        LoopConfig(5)
    with pytest.raises(FrozenInstanceError):
        StudentRun(data=DATA, out=Path("/r"), loop=LoopConfig(epochs=1)).model = "v-m"
    with pytest.raises(InputError, match="kind 'cnn'"):
        run_from_dict({**run_to_dict(StudentRun(data=DATA, out=Path("/r"), loop=LoopConfig(epochs=1))), "kind": "cnn"})


def test_a_study_run_is_built_from_the_study_settings(tmp_path):
    settings = StudySettings("temperature", str(tmp_path), "folder", split="random", folds=2, epochs=30,
                             temperatures=(2.0,), sizes=("xs",), lr=1e-3, batch_size=32, dropout=0.1, seed=5,
                             split_seed=9, subject_regex=r"^(s\d+)_", detect=False, cache="/cache",
                             teacher_epochs=4, teacher_input_size=75)
    teacher, *_, student = [run_settings(settings, tmp_path / "study", t) for t in tasks(settings)]
    assert isinstance(teacher, TeacherRun) and teacher.loop.epochs == 4 and teacher.input_size == 75
    assert teacher.out == tmp_path / "study" / "teacher" / "fold-0" and teacher.loop.eval_batch_size == 64
    assert student == StudentRun(
        data=DataOptions(root=tmp_path, dataset="folder", layout=LayoutOptions(subject_regex=r"^(s\d+)_"),
                         split="random", folds=2, fold=1, split_seed=9, detect=False, cache_dir="/cache"),
        out=tmp_path / "study" / "runs" / "p12-xs-T2" / "fold-1",
        loop=LoopConfig(epochs=30, batch_size=32, lr=1e-3, seed=5), model="p12-xs", dropout=0.1,
        teacher_logits=tmp_path / "study" / "teacher" / "fold-1" / "teacher_logits.safetensors",
        temperature=2.0, lam=0.5)


def test_the_worker_reports_an_edgefer_error_on_its_last_line(tmp_path, capsys):
    pytest.importorskip("torch")
    data = DataOptions(root=tmp_path / "missing", dataset="folder", split="random")
    run = StudentRun(data=data, out=tmp_path / "run", loop=LoopConfig(epochs=1))
    assert main([str(write_job(RunJob(run, threads=1), tmp_path / "job.json"))]) == 2
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("edgefer: error: ") and "missing" in last
