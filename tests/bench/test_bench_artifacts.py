"""The build step's kept work folder: what a later run may reuse, and what it must build again."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

pytest.importorskip("torch")

from edgefer.bench.artifacts import MANIFEST, REFERENCE, build, build_settings  # noqa: E402
from edgefer.bench.jobs import BuildJob  # noqa: E402
from edgefer.bench.plan import ArtifactInfo  # noqa: E402


def _job(folder, contexts: int) -> BuildJob:
    return BuildJob("microexpnet-ck", ["onnx", "tensorrt"], ["fp32"], False, str(folder), 256, str(folder),
                    opt_batches=[1, 256], contexts=contexts)


def _built(folder, job: BuildJob) -> dict[str, ArtifactInfo]:
    emitted: list[dict] = []
    build(job, emitted.append)
    return {item["artifact"]["format"]: ArtifactInfo(**item["artifact"]) for item in emitted if "artifact" in item}


def test_a_kept_engine_is_reused_only_for_the_same_profiles(tmp_path):
    """An engine built with one profile copy (latency mode) is not an engine with four (throughput mode)."""
    (tmp_path / REFERENCE).write_bytes(b"kept")
    engine, onnx = tmp_path / "m.fp32.engine", tmp_path / "m.fp32.onnx"
    engine.write_bytes(b"engine")
    onnx.write_bytes(b"onnx")
    single = _job(tmp_path, contexts=1)
    kept = [ArtifactInfo("tensorrt", "fp32", engine.name, 6, settings=build_settings(single, "tensorrt")),
            ArtifactInfo("onnx", "fp32", onnx.name, 4, settings=build_settings(single, "onnx"))]
    (tmp_path / MANIFEST).write_text(json.dumps([asdict(info) for info in kept]), encoding="utf-8")

    same = _built(tmp_path, single)
    assert same["tensorrt"].path == str(engine) and same["tensorrt"].status == "written"  # reused as it was
    assert same["onnx"].path == str(onnx)

    four = _built(tmp_path, _job(tmp_path, contexts=4))
    assert four["onnx"].path == str(onnx)  # an ONNX file has no profiles: still reused
    assert four["tensorrt"].path != str(engine)  # built again (here: refused, as TensorRT is not installed)
    assert build_settings(_job(tmp_path, 4), "tensorrt") != build_settings(single, "tensorrt")
