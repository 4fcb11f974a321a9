"""Model files and kills (issue 15, items 10, 13 and 15): a pickle that names code is refused whatever
else is wrong with it; hard links and an IR's .bin cannot lead out of a model's folder; SIGTERM during
convert or train is as clean as Ctrl-C and exits 143.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hostile import RunsCode, save_external_model

from edgefer.errors import ModelError, UnsafeModelError
from edgefer.runtime.loader import open_backend

# --- 10: a pickle naming code, whatever else is wrong ------------------------------------------------

def _hostile_pickles(folder: Path) -> dict[str, bytes]:
    torch = pytest.importorskip("torch")
    code = RunsCode(folder / "SENTINEL")
    zipped = io.BytesIO()
    torch.save({"epoch": 1, "model": code}, zipped)
    zipped = zipped.getvalue()
    legacy = pickle.dumps({"model": code}, protocol=2)
    return {
        "legacy + appended data": legacy + os.urandom(4096),
        "legacy, protocol 4 (STACK_GLOBAL) + garbage": pickle.dumps({"m": code}, protocol=4) + b"\x00garbage",
        "legacy cut short": legacy[:len(legacy) - 3],
        "zip + 70 KB appended (central directory lost)": zipped + os.urandom(70_000),
        "zip cut in half": zipped[:len(zipped) // 2],
        "zip with a flipped byte after the pickle": zipped[:-30] + bytes([zipped[-30] ^ 0xFF]) + zipped[-29:],
    }


@pytest.mark.parametrize("case", ["legacy + appended data", "legacy, protocol 4 (STACK_GLOBAL) + garbage",
                                  "legacy cut short", "zip + 70 KB appended (central directory lost)",
                                  "zip cut in half", "zip with a flipped byte after the pickle"])
def test_a_pickle_naming_code_is_unsafe_whatever_else_is_wrong(tmp_path, case):
    from edgefer.train.safe_load import load_torch_file

    path = tmp_path / "checkpoint.pt"
    path.write_bytes(_hostile_pickles(tmp_path)[case])
    with pytest.raises(UnsafeModelError, match="names code to run on load .*system") as err:
        load_torch_file(path, "a checkpoint")
    assert err.value.exit_code == 3
    assert not (tmp_path / "SENTINEL").exists()


def test_plain_checkpoints_still_load_in_both_formats(tmp_path):
    torch = pytest.importorskip("torch")
    from edgefer.train.safe_load import load_torch_file, scan_globals

    for legacy in (False, True):
        path = tmp_path / f"weights-{legacy}.pt"
        torch.save({"w": torch.arange(3.0)}, path, _use_new_zipfile_serialization=not legacy)
        assert "torch._utils._rebuild_tensor_v2" in scan_globals(path.read_bytes())
        assert load_torch_file(path, "weights")["w"].tolist() == [0.0, 1.0, 2.0]


def test_garbage_that_is_no_pickle_is_still_exit_2(tmp_path):
    from edgefer.train.safe_load import load_torch_file

    path = tmp_path / "garbage.pt"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(ModelError) as err:
        load_torch_file(path, "a checkpoint")
    assert err.value.exit_code == 2


# --- 13: hard links and an IR's .bin -----------------------------------------------------------------

@pytest.fixture
def external_model(tmp_path) -> Path:
    pytest.importorskip("onnx")
    return save_external_model(tmp_path / "model")


def test_external_data_as_a_hard_link_to_a_file_outside_is_refused(external_model, tmp_path):
    weights = external_model.with_name("weights.bin")
    open_backend(external_model).close()  # loads while the file is its own
    outside = tmp_path / "secret.bin"
    shutil.move(weights, outside)
    os.link(outside, weights)  # the folder's name for a file that lives outside it
    with pytest.raises(UnsafeModelError, match="'weights.bin' is a hard link .*copy the file instead") as err:
        open_backend(external_model)
    assert err.value.exit_code == 3


@pytest.fixture
def ir_copy(microexpnet_ir, tmp_path) -> Path:
    folder = tmp_path / "ir"
    folder.mkdir()
    for suffix in (".xml", ".bin"):
        shutil.copy(microexpnet_ir.with_suffix(suffix), folder / f"model{suffix}")
    return folder / "model.xml"


def test_ir_whose_bin_leads_out_of_its_folder_is_refused(ir_copy, tmp_path):
    crops = np.zeros((1, 1, 84, 84), np.float32)
    with open_backend(ir_copy) as backend:
        assert backend.run(crops).shape == (1, len(backend.spec.labels))
    weights = ir_copy.with_suffix(".bin")
    outside = tmp_path / "elsewhere.bin"
    shutil.move(weights, outside)
    weights.symlink_to(outside)
    with pytest.raises(UnsafeModelError, match="weights file 'model.bin' resolves to .*outside the model's folder"):
        open_backend(ir_copy)
    weights.unlink()
    os.link(outside, weights)
    with pytest.raises(UnsafeModelError, match="weights file 'model.bin' is a hard link"):
        open_backend(ir_copy)


# --- 15: SIGTERM -------------------------------------------------------------------------------------

def _terminate_when(process: subprocess.Popen, ready, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while not ready():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    return stderr


@pytest.mark.slow
def test_sigterm_during_convert_removes_its_staging_and_exits_143(tmp_path):
    out = tmp_path / "models"
    process = subprocess.Popen([sys.executable, "-m", "edgefer", "convert", "microexpnet-ck", "--to", "onnx,openvino",
                                "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr = _terminate_when(process, lambda: any(tmp_path.glob(".edgefer-convert-*/*")))
    assert process.returncode == 143, stderr
    assert not list(tmp_path.glob(".edgefer-convert-*")), "the staging folder was left behind"
    assert not out.exists() or all(p.suffix in (".onnx", ".xml", ".bin", ".json") for p in out.iterdir())


@pytest.mark.slow
def test_sigterm_during_training_checkpoints_and_exits_143(tmp_path):
    pytest.importorskip("torch")
    from synthetic_faces import shared_cache, shared_dataset  # the training tests' small dataset

    out = tmp_path / "run"
    args = ["train", "student", "--data", shared_dataset("folder"), "--dataset", "folder", "--subject-regex",
            r"^(s\d+)_", "--folds", "4", "--fold", "0", "--epochs", "500", "--lr", "1e-3", "--cache", shared_cache(),
            "--out", out]
    process = subprocess.Popen([sys.executable, "-m", "edgefer", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    stderr = _terminate_when(process, lambda: metrics.exists() and metrics.read_text().strip())
    assert process.returncode == 143, stderr
    assert "holds a resumable run" in stderr
    assert (out / "checkpoint.pt").is_file() and not list(out.glob("*.tmp"))
