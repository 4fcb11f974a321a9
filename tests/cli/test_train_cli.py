"""`edgefer train`: the student command end to end, bad input, a missing torch, and a real Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")

from synthetic_faces import shared_cache, shared_dataset  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from edgefer.cli.train import train_app  # noqa: E402
from edgefer.errors import InputError, ModelError  # noqa: E402
from edgefer.train.fit.checkpoint import load_state  # noqa: E402

RUN_TRAIN_APP = "from edgefer.cli.train import train_app; train_app()"


def student_args(out, epochs, *extra) -> list[str]:
    args = ["student", "--data", shared_dataset("folder"), "--dataset", "folder", "--subject-regex", r"^(s\d+)_",
            "--folds", "4", "--fold", "0", "--epochs", epochs, "--lr", "1e-3", "--cache", shared_cache(),
            "--out", out, *extra]
    return list(map(str, args))


def test_student_command(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(train_app, student_args(out, 2, "--model", "p12-xs", "--split", "random",
                                                        "--threads", "2"), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert re.search(r"p12-xs on folder fold 0 \(random split, 4 folds, \d+ subjects, \d+ images\): test accuracy",
                     result.output)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["model"], metrics["epochs"], metrics["split"]) == ("p12-xs", 2, "random")


@pytest.mark.parametrize(("change", "error", "message"), [
    (["--dataset", "ck"], InputError, "not the CK\\+ layout"),
    (["--split", "person"], InputError, "unknown split"),
    (["--fold", "4"], InputError, "out of range"),
    (["--model", "resnet50"], ModelError, "unknown model"),
    (["--teacher-logits", "missing.safetensors"], InputError, "teacher logits file not found"),
])
def test_bad_input_is_an_edgefer_error(tmp_path, change, error, message):
    """edgefer's main() prints these as one line and exits with 2."""
    result = CliRunner().invoke(train_app, student_args(tmp_path / "run", 1, *change))
    assert isinstance(result.exception, error), result.output
    assert re.search(message, str(result.exception))


@pytest.mark.slow
def test_without_torch_it_asks_for_the_train_extra(tmp_path):
    block_torch = "import sys; sys.modules['torch'] = None; " + RUN_TRAIN_APP
    out = subprocess.run([sys.executable, "-c", block_torch, *student_args(tmp_path / "run", 1)],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "edgefer train needs torch, which is not installed: pip install 'edgefer[train]'" in out.stderr


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_run(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", RUN_TRAIN_APP, *student_args(out, 500)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text().strip():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "holds a resumable run" in stderr
    state = load_state(out / "checkpoint.pt")
    assert 1 <= state.epoch < 500
    result = CliRunner().invoke(train_app, student_args(out, state.epoch + 1), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == state.epoch + 1 and metrics["resumed_at"] == [state.epoch, state.step]
