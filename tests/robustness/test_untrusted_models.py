"""Untrusted model files: each is refused with a clear error and exit code.

Real files, real runtimes (ONNX Runtime; TensorRT's checks run before TensorRT is imported), real CLI processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import RunsCode, save_external_model

from edgefer.errors import BackendUnavailable, ModelError, UnsafeModelError
from edgefer.runtime import open_backend
from edgefer.runtime.base import check_model_file
from edgefer.runtime.tensorrt_backend import TensorRtBackend, check_compatible, sidecar_path
from edgefer.spec import ModelSpec
from edgefer.trust import MAX_SAFETENSORS_HEADER, check_onnx_file, check_safetensors_file
from edgefer.zoo import pretrained

REPO = Path(__file__).resolve().parents[2]
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 272567\n"


def error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("edgefer: error: "), result.stderr
    return lines[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    return pretrained("microexpnet-ck").onnx.read_bytes()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (4, 1, 84, 84)).astype(np.float32)


# --- case 1: truncated or garbage ONNX --------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.5, 0.01, 0.3, 0.9, 0.999])
def test_truncated_onnx_is_refused_naming_the_file(tmp_path, onnx_bytes, fraction):
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx_bytes[:int(len(onnx_bytes) * fraction)])
    with pytest.raises(ModelError, match=re.escape(f"{path}: invalid/truncated ONNX protobuf")) as err:
        open_backend(path)
    assert type(err.value) is ModelError and err.value.exit_code == 2


@pytest.mark.parametrize("content", [b"\x08\x01garbage" * 10, bytes(range(256)) * 40, b"\xff" * 64, b"{}"])
def test_garbage_onnx_is_refused(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="invalid/truncated ONNX protobuf"):
        check_model_file(path, "an ONNX model")


@pytest.mark.slow
def test_truncated_onnx_on_the_cli_exits_2_and_writes_nothing(edgefer, tmp_path, onnx_bytes, astronaut_path):
    (tmp_path / "model.onnx").write_bytes(onnx_bytes[:len(onnx_bytes) // 2])
    before = snapshot(tmp_path)
    result = edgefer("predict", "--model", tmp_path / "model.onnx", astronaut_path)
    assert result.returncode == 2
    assert f"{tmp_path / 'model.onnx'}: invalid/truncated ONNX protobuf" in error_line(result)
    assert snapshot(tmp_path) == before


def test_the_bundled_models_pass_the_checks():
    for name in ("microexpnet-ck", "microexpnet-oulu"):
        assert check_onnx_file(pretrained(name).onnx) == pretrained(name).onnx
        assert "conv1.weight" in check_safetensors_file(pretrained(name).safetensors)


# --- case 2: a Git LFS pointer saved as a model -----------------------------------------------------

@pytest.mark.parametrize("name", ["model.onnx", "model.safetensors", "model.xml", "model.engine"])
def test_lfs_pointer_is_named(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(LFS_POINTER)
    with pytest.raises(ModelError, match="Git LFS pointer, run `git lfs pull`") as err:
        check_model_file(path, "a model")
    assert err.value.exit_code == 2


@pytest.mark.slow
def test_lfs_pointer_on_the_cli_exits_2_and_writes_nothing(edgefer, tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(LFS_POINTER)
    result = edgefer("convert", weights, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "Git LFS pointer, run `git lfs pull`" in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


# --- case 3: external data pointing out of the model's folder ----------------------------------------

@pytest.fixture(scope="module")
def external_model(tmp_path_factory) -> Path:
    """The bundled CK+ model with its weights in an external file beside it (as large exports have)."""
    pytest.importorskip("onnx")
    return save_external_model(tmp_path_factory.mktemp("external") / "model")


def _with_location(model: Path, folder: Path, location: str) -> Path:
    """A copy of ``model`` in ``folder`` whose external data locations all read ``location``."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def test_external_data_inside_the_folder_loads_and_matches(external_model, crops):
    reference = open_backend(pretrained("microexpnet-ck").onnx).run(crops)
    assert len(check_onnx_file(external_model).read_bytes()) < 20_000  # the weights really are outside
    np.testing.assert_array_equal(open_backend(external_model).run(crops), reference)


@pytest.mark.parametrize("location", ["../../etc/passwd", "subdir/../../weights.bin", "/etc/passwd",
                                      "..\\..\\weights.bin", "sub/../../../etc/hosts"])
def test_external_data_escaping_the_folder_is_refused(external_model, tmp_path, location):
    (tmp_path / "m" / "subdir").mkdir(parents=True)
    shutil.copy(external_model.with_name("weights.bin"), tmp_path / "weights.bin")  # a real file to reach
    path = _with_location(external_model, tmp_path / "m", location)
    with pytest.raises(UnsafeModelError, match="points outside the model's folder") as err:
        open_backend(path)
    assert err.value.exit_code == 3


def test_external_data_through_a_symlink_out_of_the_folder_is_refused(external_model, tmp_path):
    outside = Path(shutil.copy(external_model.with_name("weights.bin"), tmp_path / "secret.bin"))
    path = _with_location(external_model, tmp_path / "m", "weights.bin")
    (tmp_path / "m" / "weights.bin").symlink_to(outside)
    with pytest.raises(UnsafeModelError, match="'weights.bin' points outside the model's folder"):
        open_backend(path)


def test_external_data_that_is_missing_or_not_a_file(external_model, tmp_path):
    path = _with_location(external_model, tmp_path / "m", "weights.bin")
    with pytest.raises(ModelError, match="external data file 'weights.bin' is missing"):
        open_backend(path)
    os.mkfifo(tmp_path / "m" / "weights.bin")  # a reader would block forever
    with pytest.raises(UnsafeModelError, match="not a regular file"):
        open_backend(path)


@pytest.mark.slow
def test_escaping_external_data_on_the_cli_and_before_tensorrt(edgefer, external_model, tmp_path, astronaut_path):
    path = _with_location(external_model, tmp_path / "m", "../../../../../../etc/passwd")
    result = edgefer("predict", "--model", path, astronaut_path)
    assert result.returncode == 3
    assert "points outside the model's folder" in error_line(result)
    from edgefer.convert.tensorrt_build import build_engine

    with pytest.raises(UnsafeModelError):  # checked before TensorRT (absent here) is even imported
        build_engine(path, tmp_path / "model.engine", ModelSpec())
    assert not list(tmp_path.glob("model.engine*"))


# --- cases 4 and 5: pickles -------------------------------------------------------------------------

class CustomConfig:
    """A harmless class that is simply not on torch's weights-only allowlist."""


def _pickle_files(folder: Path) -> dict[str, Path]:
    import pickle

    torch = pytest.importorskip("torch")
    sentinel = folder / "SENTINEL"
    files = {"zip": folder / "checkpoint.pt", "legacy": folder / "legacy.pt"}
    torch.save({"epoch": 1, "model": RunsCode(sentinel)}, files["zip"])
    files["legacy"].write_bytes(pickle.dumps({"model": RunsCode(sentinel)}, protocol=2))  # torch's old format
    return files


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, kind):
    from edgefer.train.fit.checkpoint import load_state

    path = _pickle_files(tmp_path)[kind]
    with pytest.raises(UnsafeModelError, match="no option to unpickle code") as err:
        load_state(path)
    assert "posix.system" in str(err.value) or "os.system" in str(err.value)
    assert err.value.exit_code == 3
    assert not (tmp_path / "SENTINEL").exists()


@pytest.mark.slow
def test_pickle_refused_even_with_torch_force_no_weights_only_load(edgefer, tmp_path):
    files = _pickle_files(tmp_path)
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    loads = """if True:
        import json, sys
        from edgefer.convert.sources import load_source
        from edgefer.train.fit.checkpoint import load_state
        refused = []
        for path in sys.argv[1:]:
            for load in (load_state, load_source):
                try:
                    load(path)
                except Exception as err:
                    refused.append(type(err).__name__)
        print(json.dumps(refused))
    """
    result = subprocess.run([sys.executable, "-c", loads, *map(str, files.values())], capture_output=True,
                            text=True, env={**os.environ, **env})
    assert json.loads(result.stdout) == ["UnsafeModelError"] * 4, result.stderr
    result = edgefer("convert", files["zip"], "--out", tmp_path / "out", env=env)
    assert result.returncode == 3
    assert "posix.system" in error_line(result) or "os.system" in error_line(result)
    assert not (tmp_path / "SENTINEL").exists() and not (tmp_path / "out").exists()


def test_non_allowlisted_global_is_named_and_there_is_no_opt_in(tmp_path):
    torch = pytest.importorskip("torch")
    from edgefer.train.fit.checkpoint import load_state

    path = tmp_path / "checkpoint.pt"
    torch.save({"format": 1, "config": CustomConfig()}, path)
    with pytest.raises(UnsafeModelError) as err:
        load_state(path)
    assert f"{CustomConfig.__module__}.CustomConfig" in str(err.value)
    assert "weights_only=True only and has no option to unpickle code" in str(err.value)
    assert ".safetensors" in str(err.value)


def test_every_torch_load_in_edgefer_passes_weights_only_true():
    calls = 0
    for folder in ("edgefer", "train", "convert", "bench"):
        for source in (REPO / folder).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            assert "weights_only=False" not in text, source
            for call in re.finditer(r"torch\.load\(([^()]|\([^()]*\))*\)", text):
                calls += 1
                assert "weights_only=True" in call.group(0), f"{source}: {call.group(0)}"
    assert calls >= 1


# --- case 6: safetensors whose values, names or shapes do not fit -----------------------------------

@pytest.fixture(scope="module")
def weights():
    from safetensors import safe_open

    pytest.importorskip("torch")
    with safe_open(str(pretrained("microexpnet-ck").safetensors), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()


def _save(path: Path, tensors: dict, metadata: dict) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    return path


def _doctored(tensors: dict, change: str) -> tuple[dict, str]:
    tensors = dict(tensors)
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.ndim == 4)
    if change in ("nan", "inf"):
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[3] = float(change)
    elif change == "missing":
        del tensors[key]
    elif change == "extra":
        key = "fc.extra_weight"
        tensors[key] = tensors[next(iter(tensors))].clone()
    else:
        tensors[key] = tensors[key][:1].contiguous()
    return tensors, key


@pytest.mark.parametrize("change", ["nan", "inf", "missing", "extra", "shape"])
def test_safetensors_that_do_not_fit_are_refused_naming_the_tensor(tmp_path, weights, change):
    from edgefer.train.models.weights import load_weights

    tensors, key = _doctored(weights[0], change)
    path = _save(tmp_path / "model.safetensors", tensors, weights[1])
    with pytest.raises(ModelError, match=re.escape(key)) as err:
        load_weights(path)
    assert err.value.exit_code == 2


@pytest.mark.slow
def test_nan_weights_on_the_cli_exit_2_and_write_nothing(edgefer, tmp_path, weights):
    tensors, key = _doctored(weights[0], "nan")
    path = _save(tmp_path / "model.safetensors", tensors, weights[1])
    result = edgefer("convert", path, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert f"{key} holds NaN or infinite values" in error_line(result)
    assert not (tmp_path / "out").exists()


# --- case 7: safetensors headers that would make a reader allocate, hang or read polyglot bytes --------

def _raw_safetensors(header: dict | bytes, data: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _entry(begin: int, end: int, shape=(2,)) -> dict:
    return {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, end]}


SAFETENSORS_CASES = {
    "header over 100 MB": (_raw_safetensors(b"{}", b"", length=MAX_SAFETENSORS_HEADER + 1), "over the"),
    "header of 2**64-1 bytes": (_raw_safetensors(b"{}", b"", length=2**64 - 1), "over the"),
    "header past the end": (_raw_safetensors(b'{"a": 1}', b"", length=5000), "truncated"),
    "overlapping offsets": (_raw_safetensors({"a": _entry(0, 8), "b": _entry(4, 12)}, bytes(12)), "overlaps"),
    "hole between tensors": (_raw_safetensors({"a": _entry(0, 8), "b": _entry(12, 20)}, bytes(20)), "hole"),
    "trailing hole": (_raw_safetensors({"a": _entry(0, 8)}, bytes(4096)), "trailing bytes"),
    "truncated data": (_raw_safetensors({"a": _entry(0, 8)}, bytes(4)), "truncated"),
    "size not matching shape": (_raw_safetensors({"a": _entry(0, 8, (3,))}, bytes(8)), "bytes for shape"),
    "huge shape": (_raw_safetensors({"a": _entry(0, 8, (2**40, 2**40))}, bytes(8)), "bytes for shape"),
    "duplicate key": (_raw_safetensors(b'{"a": {}, "a": {}}', b""), "duplicate key"),
    "not json": (_raw_safetensors(b"{not json", b""), "broken safetensors header"),
    "not an object": (_raw_safetensors(b"[1, 2]", b""), "not a JSON object"),
    "bad metadata": (_raw_safetensors({"__metadata__": {"a": 1}}, b""), "strings to strings"),
    "unknown dtype": (_raw_safetensors({"a": {**_entry(0, 8), "dtype": "X9"}}, bytes(8)), "unknown dtype"),
    "negative offsets": (_raw_safetensors({"a": _entry(-8, 0)}, bytes(8)), "data_offsets"),
    "seven bytes": (b"\x01" * 7, "shorter than"),
}


@pytest.mark.parametrize("case", sorted(SAFETENSORS_CASES))
def test_hostile_safetensors_header_is_refused_before_reading(tmp_path, case):
    content, match = SAFETENSORS_CASES[case]
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=match) as err:
        check_model_file(path, "a safetensors weights file")
    assert err.value.exit_code == 2


# --- case 8: TensorRT plans are checked against their manifest before TensorRT sees them -------------

A100 = {"tensorrt": "10.3.0", "gpu": "NVIDIA A100-SXM4-40GB", "compute_capability": "8.0"}


def _engine(folder: Path, plan: bytes, recorded: bytes | None = None) -> Path:
    from edgefer.convert.tensorrt_build import sidecar_record

    path = folder / "model.engine"
    path.write_bytes(plan)
    record = sidecar_record(ModelSpec(), A100, (1, 1, 8), {"flags": []}, plan if recorded is None else recorded)
    sidecar_path(path).write_text(json.dumps(record), encoding="utf-8")
    return path


@pytest.mark.parametrize("tamper", ["one byte", "truncated", "random bytes"])
def test_tampered_plan_is_refused_by_its_sha256(tmp_path, tamper):
    plan = bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8))
    changed = {"one byte": plan[:100] + bytes([plan[100] ^ 1]) + plan[101:], "truncated": plan[:2048],
               "random bytes": os.urandom(4096)}[tamper]
    path = _engine(tmp_path, changed, recorded=plan)
    with pytest.raises(UnsafeModelError, match="does not match the sha256 in model.engine.json") as err:
        TensorRtBackend(path)
    assert err.value.exit_code == 3


@pytest.mark.slow
def test_tampered_plan_on_the_cli_exits_3(edgefer, tmp_path, astronaut_path):
    path = _engine(tmp_path, b"\x00" * 64, recorded=b"\x01" * 64)
    result = edgefer("predict", "--model", path, astronaut_path)
    assert result.returncode == 3
    assert "does not match the sha256" in error_line(result)


@pytest.mark.parametrize("change", [{"tensorrt": "10.8.0"}, {"gpu": "NVIDIA H100"}, {"compute_capability": "9.0"}])
def test_plan_from_another_tensorrt_or_gpu_is_exit_5(change):
    with pytest.raises(BackendUnavailable, match="rebuild with edgefer convert") as err:
        check_compatible(Path("model.engine"), A100, {**A100, **change})
    assert err.value.exit_code == 5


def test_intact_plan_passes_the_hash_and_stops_where_tensorrt_is_needed(tmp_path):
    from edgefer.convert.tensorrt_build import tensorrt_available

    if tensorrt_available() is None:
        pytest.skip("TensorRT is usable here: the GPU tests in test_tensorrt.py cover real plans")
    with pytest.raises(BackendUnavailable):  # got past the sha256 check to TensorRT's import
        TensorRtBackend(_engine(tmp_path, b"an untampered plan"))
