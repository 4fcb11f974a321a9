"""The teacher: trained from an ImageNet state dict through the CLI, its logits saved once and
reused by a distilled student, which refuses the logits of another fold or dataset."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from synthetic_faces import shared_cache, shared_dataset  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from edgefer.cli.train import train_app  # noqa: E402
from edgefer.errors import InputError, ModelError  # noqa: E402
from edgefer.train.data.datasets import LayoutOptions  # noqa: E402
from edgefer.train.data.folds import load_fold  # noqa: E402
from edgefer.train.data.options import DataOptions  # noqa: E402
from edgefer.train.fit.checkpoint import load_state  # noqa: E402
from edgefer.train.fit.settings import LoopConfig, StudentRun, TeacherRun  # noqa: E402
from edgefer.train.fit.student import train_student  # noqa: E402
from edgefer.train.fit.teacher import train_teacher  # noqa: E402
from edgefer.train.fit.teacher_logits import load_teacher_logits  # noqa: E402
from edgefer.train.models.teacher import InceptionV3  # noqa: E402
from edgefer.train.models.weights import load_weights  # noqa: E402

REGEX = r"^(s\d+)_"
SIZE = 75  # the smallest Inception v3 input: keeps the CPU test short


def _data(fold: int = 1, **changes) -> DataOptions:
    return DataOptions(root=shared_dataset("folder"), dataset="folder", layout=LayoutOptions(subject_regex=REGEX),
                       folds=4, fold=fold, cache_dir=shared_cache(), **changes)


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """A torchvision-like inception_v3 state dict (1000 classes) standing in for the ImageNet download."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "inception_v3_google.pth"
    torch.save(InceptionV3(num_classes=1000).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, imagenet_file):
    out = tmp_path_factory.mktemp("runs") / "teacher-fold1"
    args = ["teacher", "--data", shared_dataset("folder"), "--dataset", "folder", "--subject-regex", REGEX,
            "--folds", "4", "--fold", "1", "--epochs", "1", "--input-size", SIZE, "--batch-size", "32",
            "--imagenet", imagenet_file, "--cache", shared_cache(), "--out", out]
    result = CliRunner().invoke(train_app, list(map(str, args)), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "teacher logits:" in result.output
    return out


def test_teacher_checkpoint_is_a_convertible_inception_v3(teacher_run):
    model, spec = load_weights(teacher_run / "model.safetensors")
    assert isinstance(model, InceptionV3)
    assert (spec.input_size, spec.channels, spec.pixel_max) == (SIZE, 3, 255.0)
    assert spec.model == "inception-v3:teacher-fold1"


def test_teacher_started_from_the_imagenet_file(teacher_run, imagenet_file):
    start = torch.load(imagenet_file, weights_only=True)
    trained, _ = load_weights(teacher_run / "model.safetensors")
    key = "Mixed_7c.branch1x1.conv.weight"
    assert (trained.state_dict()[key] - start[key]).abs().max() < 0.01  # a few Adam steps of 1e-4 from it
    assert load_state(teacher_run / "checkpoint.pt").fingerprint["imagenet"]


def test_logits_cover_every_training_crop_and_are_kept(teacher_run, imagenet_file):
    fold = load_fold(_data())
    logits, header = load_teacher_logits(teacher_run / "teacher_logits.safetensors", fold)
    assert logits.shape == (len(fold.train), 8) and torch.isfinite(logits).all()
    assert sorted(header["sample_ids"]) == sorted(fold.train_ids)
    assert header["teacher"]["input_size"] == SIZE
    before = (teacher_run / "teacher_logits.safetensors").stat().st_mtime_ns
    metrics = train_teacher(TeacherRun(data=_data(), out=teacher_run, loop=LoopConfig(epochs=1, batch_size=32),
                                       input_size=SIZE, imagenet=imagenet_file))
    assert metrics["resumed_at"] == [1, 0]
    assert (teacher_run / "teacher_logits.safetensors").stat().st_mtime_ns == before  # computed once


def test_student_distils_from_the_teachers_logits(teacher_run, tmp_path):
    run = StudentRun(data=_data(), out=tmp_path, loop=LoopConfig(epochs=2, lr=1e-3),
                     teacher_logits=teacher_run / "teacher_logits.safetensors", temperature=4.0, lam=0.7)
    metrics = train_student(run)
    assert (metrics["loss"], metrics["temperature"], metrics["lam"]) == ("distillation", 4.0, 0.7)
    fingerprint = load_state(tmp_path / "checkpoint.pt").fingerprint
    assert fingerprint["teacher_logits"] and fingerprint["temperature"] == 4.0


def test_student_refuses_logits_of_another_fold_or_dataset(teacher_run, tmp_path):
    logits = teacher_run / "teacher_logits.safetensors"
    with pytest.raises(InputError, match="teacher logits of fold 1 .* this run trains fold 2"):
        train_student(StudentRun(data=_data(fold=2), out=tmp_path, loop=LoopConfig(epochs=1), teacher_logits=logits))
    ck = DataOptions(root=shared_dataset("ck"), dataset="ck", folds=4, fold=1, cache_dir=shared_cache())
    with pytest.raises(InputError, match="another dataset"):
        train_student(StudentRun(data=ck, out=tmp_path, loop=LoopConfig(epochs=1), teacher_logits=logits))
    with pytest.raises(InputError, match="must be within 0..1"):
        train_student(StudentRun(data=_data(), out=tmp_path, loop=LoopConfig(epochs=1), teacher_logits=logits,
                                 lam=1.5))


class Unsafe:
    """Not on torch's weights_only allowlist: loading a pickle of it must be refused."""


def test_imagenet_file_is_read_weights_only(tmp_path):
    path = tmp_path / "suspicious.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": Unsafe()}, path)
    with pytest.raises(ModelError, match="weights_only=True"):
        train_teacher(TeacherRun(data=_data(), out=tmp_path / "run", loop=LoopConfig(epochs=1), input_size=SIZE,
                                 imagenet=path))
