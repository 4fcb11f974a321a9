"""Wrong types at the API and unbounded numbers at the CLI: one clear error, before any work (issue 15)."""

import json

import numpy as np
import pytest

from edgefer import Recognizer
from edgefer.artifact import read_spec
from edgefer.errors import InputError, ModelError
from edgefer.runtime.loader import open_backend
from edgefer.runtime.tensorrt_backend import MAX_SIDECAR_BYTES


@pytest.mark.parametrize("model", [5, None, 3.5, ["microexpnet-ck"]])
def test_a_model_that_is_not_a_name_or_path_is_an_input_error(model):
    with pytest.raises(InputError, match="bundled name or a model file path"):
        Recognizer(model)
    with pytest.raises(InputError, match="must be a path"):
        open_backend(model)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer("microexpnet-ck", detector="haar")


@pytest.mark.parametrize("frames, named", [
    (5, "got int"),
    (np.zeros((48, 64, 3), np.uint8), r"array shaped \(48, 64, 3\)"),
    ("clip.mp4", "open_video"),
    (b"\x89PNG", "open_video"),
])
def test_stream_refuses_what_is_not_frames(recognizer, frames, named):
    with pytest.raises(InputError, match=named):
        recognizer.stream(frames)


def test_stream_takes_an_array_of_frames(recognizer, astronaut_bgr):
    frames = np.stack([astronaut_bgr] * 3)
    results = list(recognizer.stream(frames, fps=30))
    assert len(results) == 3 and all(len(r.faces) == 1 for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("args, named", [
    (["predict", "--camera", str(10**20)], "--camera"),
    (["predict", "--camera", str(2**31)], "--camera"),
    (["predict", "x.mp4", "--detect-every", str(10**12)], "--detect-every"),
])
def test_unbounded_numbers_are_exit_2_in_one_line(edgefer, args, named):
    result = edgefer(*args)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("target, named", [("afile/sub.json", "exists and is not a folder"),
                                           (".", "is a folder")])
def test_bench_json_that_cannot_be_written_is_refused_before_any_work(edgefer, tmp_path, target, named):
    (tmp_path / "afile").write_text("not a folder")
    result = edgefer("bench", "--models", "microexpnet", "--backends", "onnxruntime", "--json", target,
                     cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("edgefer: error: --json") and named in result.stderr
    assert "detecting backends" not in result.stdout + result.stderr
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_a_huge_tensorrt_sidecar_is_refused_unread(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    sidecar = tmp_path / "m.engine.json"
    with sidecar.open("w") as handle:
        handle.write(json.dumps({"spec": {}, "pad": ""}))
        handle.truncate(MAX_SIDECAR_BYTES + 1)
    with pytest.raises(ModelError, match="over the .*limit"):
        read_spec(engine)
    from edgefer.runtime.tensorrt_backend import read_sidecar  # the backend's own reader (no TensorRT needed)

    with pytest.raises(ModelError, match="over the .*limit"):
        read_sidecar(engine)
