"""The training loop: the distillation loss, atomic checkpoints and exact resume after a stop or a kill."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from synthetic_faces import shared_cache, shared_dataset  # noqa: E402

from edgefer.errors import InputError, ModelError  # noqa: E402
from edgefer.train.data.datasets import LayoutOptions  # noqa: E402
from edgefer.train.data.options import DataOptions  # noqa: E402
from edgefer.train.fit.checkpoint import load_state  # noqa: E402
from edgefer.train.fit.loop import Hooks  # noqa: E402
from edgefer.train.fit.losses import distillation_loss, soft_cross_entropy  # noqa: E402
from edgefer.train.fit.settings import LoopConfig, StudentRun  # noqa: E402
from edgefer.train.fit.student import train_student  # noqa: E402
from edgefer.train.models.weights import read_weights  # noqa: E402

EPOCHS = 3


def test_distillation_loss_is_the_papers_formula():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 8), torch.randn(5, 8) * 4
    labels = torch.tensor([0, 3, 7, 1, 1])
    T, lam = 4.0, 0.3
    p_t = torch.softmax(teacher / T, 1)
    soft = -(p_t * torch.log(torch.softmax(student / T, 1))).sum(1).mean()
    hard = -torch.log(torch.softmax(student, 1))[torch.arange(5), labels].mean()
    torch.testing.assert_close(distillation_loss(student, teacher, labels, T, lam), lam * soft + (1 - lam) * hard)
    torch.testing.assert_close(distillation_loss(student, teacher, labels, T, 0.0), F.cross_entropy(student, labels))
    torch.testing.assert_close(distillation_loss(student, teacher, labels, T, 1.0), soft)
    assert soft_cross_entropy(p_t, teacher / T) <= soft  # H(p, q) >= H(p, p)


def _data(fold: int = 1) -> DataOptions:
    return DataOptions(root=shared_dataset("folder"), dataset="folder", layout=LayoutOptions(subject_regex=r"^(s\d+)_"),
                       folds=4, fold=fold, cache_dir=shared_cache())


def _run(out, epochs=EPOCHS, **loop) -> StudentRun:
    return StudentRun(data=_data(), out=out, loop=LoopConfig(epochs=epochs, **{"lr": 1e-3, **loop}), model="p12-s")


def _weights(run_dir):
    return read_weights(run_dir / "model.safetensors")[0]


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _history(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_second")}
            for line in lines]


class RecordSteps(Hooks):
    """Every optimiser step's (epoch, step, running mean loss): equal sequences mean equal batch order."""

    def __init__(self):
        self.steps = []

    def on_step(self, epoch, step, steps, loss):
        self.steps.append([epoch, step, loss])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "straight"
    recorder = RecordSteps()
    metrics = train_student(_run(out), hooks=recorder)
    assert metrics["epochs"] == EPOCHS and metrics["resumed_at"] is None
    (out.parent / "straight-steps.json").write_text(json.dumps(recorder.steps))
    return out


def _straight_steps(uninterrupted) -> list:
    return json.loads((uninterrupted.parent / "straight-steps.json").read_text())


class StopAt(Hooks):
    """Raise ``error`` right after optimiser step ``step`` of epoch ``epoch`` (0-based epoch)."""

    def __init__(self, epoch: int, step: int, error: BaseException):
        self.epoch, self.step, self.error = epoch, step, error

    def on_step(self, epoch, step, steps, loss):
        if (epoch, step) == (self.epoch, self.step):
            raise self.error


def test_stop_after_an_epoch_then_resume_gives_the_same_weights(uninterrupted, tmp_path):
    train_student(_run(tmp_path, epochs=1))
    metrics = train_student(_run(tmp_path))
    assert metrics["resumed_at"] == [1, 0]
    _assert_same_weights(uninterrupted, tmp_path)
    assert _history(tmp_path) == _history(uninterrupted)


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(uninterrupted, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train_student(_run(tmp_path), hooks=StopAt(1, 2, KeyboardInterrupt()))
    state = load_state(tmp_path / "checkpoint.pt")
    assert (state.epoch, state.step) == (1, 2)
    assert len(_history(tmp_path)) == 1
    recorder = RecordSteps()
    metrics = train_student(_run(tmp_path), hooks=recorder)
    assert metrics["resumed_at"] == [1, 2]
    straight = _straight_steps(uninterrupted)
    resumed_from = next(i for i, step in enumerate(straight) if step[:2] == [1, 3])
    assert recorder.steps == straight[resumed_from:]  # the same batches, in the same order, same losses
    _assert_same_weights(uninterrupted, tmp_path)
    assert _history(tmp_path) == _history(uninterrupted)


def test_kill_mid_epoch_resumes_from_the_last_checkpoint(uninterrupted, tmp_path):
    with pytest.raises(RuntimeError, match="killed"):
        train_student(_run(tmp_path), hooks=StopAt(2, 3, RuntimeError("killed")))
    state = load_state(tmp_path / "checkpoint.pt")
    assert (state.epoch, state.step) == (2, 0)  # nothing was saved after the end of epoch 2
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # a save the kill cut short
    metrics = train_student(_run(tmp_path))
    assert metrics["resumed_at"] == [2, 0]
    assert not list(tmp_path.glob(".checkpoint.pt.*.tmp"))
    _assert_same_weights(uninterrupted, tmp_path)


def test_checkpoint_loads_weights_only_and_holds_everything(uninterrupted):
    data = torch.load(uninterrupted / "checkpoint.pt", weights_only=True)
    assert data["epoch"] == EPOCHS and data["step"] == 0
    assert set(data["rng"]) == {"torch", "batch", "numpy", "python"}
    assert data["optimizer"]["state"] and data["fingerprint"]["model"] == "p12-s"
    assert len(data["history"]) == EPOCHS


def test_resume_refuses_other_settings_and_broken_checkpoints(uninterrupted, tmp_path):
    with pytest.raises(InputError, match="lr 0.001 -> 0.002"):
        train_student(_run(uninterrupted, lr=2e-3))
    with pytest.raises(InputError, match="seed 0 -> 1"):
        train_student(_run(uninterrupted, seed=1))
    with pytest.raises(InputError, match="belongs to a run with other settings") as err:
        train_student(StudentRun(data=_data(fold=2), out=uninterrupted, loop=LoopConfig(epochs=EPOCHS, lr=1e-3),
                                 model="p12-s"))
    assert err.value.exit_code == 2
    with pytest.raises(InputError, match="already trained 3 epochs"):
        train_student(_run(uninterrupted, epochs=2))
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match="unreadable training checkpoint"):
        train_student(_run(tmp_path))
