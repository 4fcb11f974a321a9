"""The build step (run inside a worker): every artifact a bench needs, made by ``edgefer convert``.

Each artifact passes convert's parity gate or is reported failed with the gate's figures. Beside
them: the PyTorch weights as a safetensors file (the torch backend's deployable file, for its size)
and ``reference.npz``, the validation face crops with the PyTorch logits, so every backend's
parity can be measured on the backend itself without torch. With a kept work folder,
``manifest.json`` lets a later run reuse what was built.

On a device install without torch (no edgefer[train]) a bundled model still benches: its ONNX file
is the artifact for ONNX Runtime and OpenVINO (which reads ONNX), and the reference logits are
ONNX Runtime's on that file (the file the tests hold to the authors' TensorFlow logits at 1e-4).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from edgefer.bench.jobs import BuildJob
from edgefer.bench.plan import ArtifactInfo
from edgefer.errors import one_line
from edgefer.fileio import atomic_path, atomic_write_text
from edgefer.spec import FORMAT_PRECISIONS

MANIFEST = "manifest.json"
REFERENCE = "reference.npz"


def build(job: BuildJob, emit: Callable[[dict], None]) -> None:
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    if _bundled_without_torch(job.model):
        _build_bundled(job, emit, folder)
        return
    cached = _read_manifest(folder)
    for precision in job.precisions:
        formats = [f for f in job.formats if precision in FORMAT_PRECISIONS[f]]  # bf16: OpenVINO only
        missing = [f for f in formats if (f, precision) not in cached
                   or cached[f, precision].settings != build_settings(job, f)]
        for info in _convert(job, precision, missing, folder) if missing else []:
            if info.status == "written":
                cached[info.format, precision] = info
            emit({"artifact": asdict(info)})
        for fmt in formats:
            if fmt not in missing:
                emit({"artifact": asdict(cached[fmt, precision])})
    if job.torch_weights or not (folder / REFERENCE).is_file():
        source = _source(job.model)
        if job.torch_weights:
            emit({"artifact": asdict(_torch_weights(job.model, source, folder))})
        emit({"reference": str(_reference(source, folder))})
    else:
        emit({"reference": str(folder / REFERENCE)})
    _write_manifest(folder, cached)


def _bundled_without_torch(model: str) -> bool:
    from edgefer.zoo import PRETRAINED

    return model in PRETRAINED and importlib.util.find_spec("torch") is None


def _build_bundled(job: BuildJob, emit: Callable[[dict], None], folder: Path) -> None:
    """The bundled fp32 ONNX for onnx and openvino; anything needing a conversion fails with the reason."""
    from edgefer.zoo import PRETRAINED

    onnx = PRETRAINED[job.model].onnx
    for precision in job.precisions:
        for fmt in job.formats:
            if precision == "fp32" and fmt in ("onnx", "openvino"):
                info = ArtifactInfo(fmt, precision, str(onnx), onnx.stat().st_size)
            else:
                info = ArtifactInfo(fmt, precision, "", status="failed",
                                    reason=f"{fmt} {precision} needs edgefer convert, which needs torch: "
                                           "pip install 'edgefer[train]'")
            emit({"artifact": asdict(info)})
    if job.torch_weights:
        emit({"artifact": asdict(ArtifactInfo("safetensors", "fp32", "", status="failed",
                                              reason="torch is not installed"))})
    emit({"reference": str(_reference_without_torch(onnx, folder))})


def _reference_without_torch(onnx: Path, folder: Path) -> Path:
    """The validation crops and ONNX Runtime's logits on the bundled ONNX (single thread, CPU)."""
    from edgefer.convert.calibration import builtin_validation_crops
    from edgefer.runtime.loader import open_backend

    backend = open_backend(onnx, "onnxruntime", threads=1)
    pixels = builtin_validation_crops()
    logits = backend.run(pixels)
    with atomic_path(folder / REFERENCE) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, pixels=pixels, logits=logits)
    return folder / REFERENCE


def _convert(job: BuildJob, precision: str, formats: list[str], folder: Path) -> list[ArtifactInfo]:
    from edgefer.convert.pipeline import ConvertRequest, convert

    start = time.perf_counter()
    request = ConvertRequest(job.model, tuple(formats), precision, folder, max_batch=job.max_batch,
                             opt_batches=tuple(job.opt_batches), contexts=job.contexts)
    try:
        artifacts = convert(request, progress=lambda _: None)
    except Exception as err:  # noqa: BLE001 - every failure becomes a failed artifact with its reason
        reason = f"convert failed: {one_line(err, typed=True)}"
        return [ArtifactInfo(fmt, precision, "", status="failed", reason=reason) for fmt in formats]
    seconds = time.perf_counter() - start
    return [ArtifactInfo(a.format, precision, str(a.path), a.size_bytes, a.status, one_line(a.reason), seconds,
                         build_settings(job, a.format))
            for a in artifacts]


def build_settings(job: BuildJob, fmt: str) -> str:
    """What a built file depends on beyond its format and precision: a TensorRT engine's optimisation
    profiles (largest batch, tuned batches, copies per request in flight); nothing for the others."""
    if fmt != "tensorrt":
        return ""
    return f"max_batch={job.max_batch} opt_batches={','.join(map(str, job.opt_batches))} contexts={job.contexts}"


def _source(model: str):
    from edgefer.convert.sources import load_source

    return load_source(model)


def _torch_weights(model: str, source, folder: Path) -> ArtifactInfo:
    """The bundled checkpoint of a pretrained model, or the seeded weights saved as safetensors."""
    from edgefer.zoo import PRETRAINED

    start = time.perf_counter()
    if model in PRETRAINED:
        path = PRETRAINED[model].safetensors
    else:
        from edgefer.train.models.weights import save_weights

        path = save_weights(source.model, folder / f"{source.name}.fp32.safetensors", source.name, source.spec)
    return ArtifactInfo("safetensors", "fp32", str(path), path.stat().st_size,
                        build_seconds=time.perf_counter() - start)


def _reference(source, folder: Path) -> Path:
    """The parity gate's validation crops (the model's geometry) and the PyTorch backend's logits on them: a
    kept run that every worker compares its backend with (edgefer.convert.parity.compare), without torch."""
    from edgefer.convert.calibration import builtin_validation_crops, model_input
    from edgefer.convert.parity import infer
    from edgefer.convert.torch_backend import TorchBackend

    spec = source.spec
    pixels = model_input(builtin_validation_crops(), spec.channels, spec.input_size)
    with TorchBackend(source.model, spec=spec) as reference:
        logits = infer(reference, pixels)
    with atomic_path(folder / REFERENCE) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, pixels=pixels, logits=logits)
    return folder / REFERENCE


def _read_manifest(folder: Path) -> dict[tuple[str, str], ArtifactInfo]:
    """What an earlier run built here; paths are stored relative, so a copied work folder still works."""
    try:
        entries = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        infos = [replace(ArtifactInfo(**entry), path=str(folder / entry["path"])) for entry in entries]
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    return {(i.format, i.precision): i for i in infos if i.status == "written" and Path(i.path).is_file()}


def _write_manifest(folder: Path, cached: dict[tuple[str, str], ArtifactInfo]) -> None:
    entries = [asdict(replace(i, path=Path(i.path).name)) for i in cached.values() if Path(i.path).parent == folder]
    atomic_write_text(folder / MANIFEST, json.dumps(entries, indent=1))
