"""`edgefer convert`: every requested artifact is built in a staging folder, run against the
PyTorch model on real face crops, and moved into the output folder only when it passes the gate.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from edgefer.convert.calibration import calibration_and_validation, labelled_split, model_input
from edgefer.convert.parity import AccuracyReport, ParityReport, accuracy_ratio, compare, infer
from edgefer.convert.sources import Source, load_source
from edgefer.errors import BackendUnavailable, InputError, ModelError, one_line
from edgefer.fileio import cache_dir, check_output_folder, fsync_dir, fsync_file, make_staging_dir
from edgefer.limits import check_batch
from edgefer.runtime.loader import open_backend
from edgefer.spec import FORMAT_PRECISIONS, FORMATS, PRECISIONS

SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "tensorrt": ".engine"}
DEFAULT_MAX_BATCH = 256
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ConvertRequest:
    model: str
    formats: tuple[str, ...]
    precision: str
    out: Path
    calib: Path | None = None
    batch: int | None = None  # None: dynamic batch axis
    max_batch: int = DEFAULT_MAX_BATCH
    opset: int = 18
    name: str | None = None  # the files' base name (default: the model's, or the run folder's)
    #: TensorRT, dynamic batch: one optimisation profile tuned for each of these batch sizes (default: opt 1).
    opt_batches: tuple[int, ...] = ()
    #: TensorRT: calls that may run at once on each profile (the engine holds that many copies of it).
    contexts: int = 1


@dataclass
class Artifact:
    format: str
    precision: str
    path: Path
    size_bytes: int = 0
    parity: ParityReport | None = None
    accuracy: AccuracyReport | None = None  # against the PyTorch (FP32) model, when --calib has labels
    runtime_precision: str = ""
    status: str = "pending"  # "written" or "failed"
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"format": self.format, "precision": self.precision, "path": str(self.path),
                "size_bytes": self.size_bytes, "runtime_precision": self.runtime_precision,
                "status": self.status, "reason": self.reason,
                "parity": self.parity.to_dict() if self.parity else None,
                "accuracy": asdict(self.accuracy) if self.accuracy else None}


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"unknown format {', '.join(unknown) or repr(text)}: expected one or more of "
                         f"{', '.join(FORMATS)} (comma-separated)")
    return formats


def validate(request: ConvertRequest) -> None:
    """Refuse a request that cannot succeed before any work is done."""
    if request.precision not in PRECISIONS:
        raise InputError(f"unknown precision {request.precision!r}: expected one of {', '.join(PRECISIONS)}")
    parse_formats(",".join(request.formats))
    if request.calib is not None and not Path(request.calib).is_dir():
        raise InputError(f"{request.calib}: calibration folder not found, expected a folder of face images")
    check_batch(request.max_batch, "max_batch")
    from edgefer.convert.tensorrt_build import check_contexts

    check_contexts(request.contexts)
    if request.batch is not None and not 1 <= request.batch <= request.max_batch:
        raise InputError(f"batch {request.batch} out of range 1..{request.max_batch}")
    if request.name is not None and not NAME_PATTERN.fullmatch(request.name):
        raise InputError(f"--name {request.name!r}: expected letters, digits, '-', '_' or '.', "
                         "not starting with '.' (it becomes the start of each file name)")
    check_output_folder(request.out)
    if "openvino" in request.formats:
        _require("openvino")
    if request.precision == "bf16":
        _check_bf16(request.formats)
    if "tensorrt" in request.formats:
        from edgefer.convert.tensorrt_build import tensorrt_available

        reason = tensorrt_available()
        if reason:
            raise BackendUnavailable(f"cannot build TensorRT engines here: {reason}")


def _check_bf16(formats: tuple[str, ...]) -> None:
    """bf16 is an OpenVINO compute precision, and its gate needs a CPU that computes bf16: refuse before
    any work rather than gate (and write) an artifact that ran in fp32."""
    from edgefer.sysinfo import bf16_missing_reason, cpu_has_bf16

    others = [f for f in formats if "bf16" not in FORMAT_PRECISIONS[f]]
    if others:
        raise BackendUnavailable(f"bf16 is built for openvino only, not {', '.join(others)} (ONNX Runtime has no "
                                 "bf16 CPU kernels; use fp16 for ONNX and TensorRT)")
    if not cpu_has_bf16():
        raise BackendUnavailable(f"cannot build a bf16 artifact here: {bf16_missing_reason()}, so OpenVINO would "
                                 "run it in fp32 and the bf16 parity gate could not check it; convert on a CPU "
                                 "with bf16, or load an fp32 artifact there with Recognizer(..., precision='bf16')")


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"{module} is not installed (pip install 'edgefer[{module}]')")


def artifact_stem(name: str, precision: str, batch: int | None) -> str:
    """``NAME.PRECISION`` for a dynamic batch, ``NAME.PRECISION.bN`` for a fixed one: files that differ
    only in their batch do not collide."""
    return f"{name}.{precision}" + (f".b{batch}" if batch else "")


def convert(request: ConvertRequest, progress=print) -> list[Artifact]:
    """Build, check and write the requested artifacts; return one record per artifact."""
    validate(request)
    source = load_source(request.model)
    if request.name:
        source = replace(source, name=request.name)
    spec = source.spec
    calibration, validation, labels = _crops(request.calib)
    calibration, validation = (model_input(c, spec.channels, spec.input_size) for c in (calibration, validation))
    reference = _reference_logits(source, validation)
    staging = make_staging_dir(_existing_parent(request.out), ".edgefer-convert-")
    try:
        fp32_onnx = _export_onnx(source, request, staging)
        base = _base_onnx(source, request, fp32_onnx, calibration, staging, progress)
        artifacts = []
        for fmt in request.formats:
            artifact = _build(fmt, source, request, base, staging)
            _gate(artifact, validation, reference, request.batch, labels)
            progress(f"{fmt} {request.precision}: {artifact.parity.summary() if artifact.parity else artifact.reason}")
            if artifact.accuracy:
                progress(f"{fmt} {request.precision}: {artifact.accuracy.summary()}")
            if artifact.status == "failed":
                artifact.path = request.out / artifact.path.name
            else:
                artifact.path = _publish(artifact.path, request.out)
                artifact.status = "written"
            artifacts.append(artifact)
        return artifacts
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _crops(calib: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Calibration crops, validation crops and, for a labelled folder (one sub-folder per label), the
    validation labels: then every artifact must keep 99% of the FP32 model's accuracy (MLPerf's rule)."""
    labelled = labelled_split(calib) if calib is not None else None
    if labelled is not None:
        return labelled
    calibration, validation = calibration_and_validation(calib)
    return calibration, validation, None


def _reference_logits(source: Source, pixels: np.ndarray) -> np.ndarray:
    """The PyTorch model's logits, run as a backend like every artifact after it."""
    from edgefer.convert.torch_backend import TorchBackend

    try:
        with TorchBackend(source.model, spec=source.spec) as reference:
            return infer(reference, pixels)
    except ModelError as err:
        raise ModelError(f"{source.name}: cannot be exported: {err}") from None
    except Exception as err:  # noqa: BLE001 - a model that cannot run cannot be exported
        raise ModelError(f"{source.name}: cannot be exported: the PyTorch model fails on "
                         f"{source.spec.input_shape} inputs ({one_line(err, typed=True)})") from None


def _existing_parent(out: Path) -> Path:
    """Staging lives beside ``out`` (same file system, so publishing is a rename), never inside it."""
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent


def _export_onnx(source: Source, request: ConvertRequest, staging: Path) -> Path:
    from edgefer.convert.onnx_export import export_onnx_proto, save_onnx

    spec = artifact_spec(source, request, "fp32")
    try:
        proto = export_onnx_proto(source.model, spec, opset=request.opset, batch=request.batch)
        return save_onnx(proto, staging / f"{source.name}.fp32.src.onnx")
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; the user needs one line
        raise ModelError(f"{source.name}: cannot be exported to ONNX ({one_line(err, typed=True)})") from None


def _base_onnx(source: Source, request: ConvertRequest, fp32_onnx: Path, calibration: np.ndarray,
               staging: Path, progress) -> Path:
    """The ONNX every format starts from: FP32 as exported, or the calibrated Q/DQ INT8 model."""
    if request.precision != "int8":
        return fp32_onnx
    from edgefer.convert.onnx_export import load_and_set_metadata
    from edgefer.convert.quantize import quantize_int8

    progress(f"calibrating int8 on {len(calibration)} face crops")
    out = quantize_int8(fp32_onnx, staging / f"{source.name}.int8.src.onnx", calibration,
                        source.spec.input_name)
    load_and_set_metadata(out, artifact_spec(source, request, "int8"))
    return out


def artifact_spec(source: Source, request: ConvertRequest, precision: str):
    """The spec an artifact carries: the source's, with its precision, batch and ONNX opset."""
    batch = str(request.batch) if request.batch else f"dynamic 1..{request.max_batch}"
    extra = {**source.spec.extra, "onnx_opset": str(request.opset), "batch": batch}
    return replace(source.spec, precision=precision, extra=extra)


def _build(fmt: str, source: Source, request: ConvertRequest, base_onnx: Path, staging: Path) -> Artifact:
    precision = request.precision
    spec = artifact_spec(source, request, precision)
    target = staging / f"{artifact_stem(source.name, precision, request.batch)}{SUFFIX[fmt]}"
    artifact = Artifact(fmt, precision, target)
    try:
        if fmt == "onnx":
            _onnx_artifact(base_onnx, target, spec)
        elif fmt == "openvino":
            from edgefer.convert.openvino_export import export_openvino

            export_openvino(base_onnx, target, spec, precision=precision)
        else:
            from edgefer.convert.tensorrt_build import build_engine

            batch = (request.batch,) * 3 if request.batch else (1, 1, request.max_batch)
            build_engine(base_onnx, target, spec, precision=precision, batch=batch,
                         timing_cache=cache_dir("tensorrt-timing.cache"),
                         opt_batches=() if request.batch else request.opt_batches, contexts=request.contexts)
    except Exception as err:  # noqa: BLE001 - any build failure is reported per artifact
        artifact.status, artifact.reason = "failed", f"build failed: {one_line(err, typed=True)}"
    return artifact


def _onnx_artifact(base_onnx: Path, target: Path, spec) -> None:
    if spec.precision == "fp16":
        from edgefer.convert.onnx_export import to_fp16

        to_fp16(base_onnx, target, spec)
    else:
        shutil.copyfile(base_onnx, target)


def _gate(artifact: Artifact, validation: np.ndarray, reference: np.ndarray, batch: int | None,
          labels: np.ndarray | None = None) -> None:
    if artifact.status == "failed":
        return
    try:
        backend = open_backend(artifact.path, threads=None)
        artifact.runtime_precision = backend.precision
        logits = infer(backend, validation, batch)
        backend.close()
    except Exception as err:  # noqa: BLE001
        artifact.status, artifact.reason = "failed", f"could not run: {one_line(err, typed=True)}"
        return
    artifact.parity = compare(reference, logits, artifact.precision, artifact.format)
    artifact.size_bytes = _size(artifact.path)
    if labels is not None:
        artifact.accuracy = accuracy_ratio(labels, reference, logits)
    if not artifact.parity.passed:
        artifact.status, artifact.reason = "failed", f"parity gate: {artifact.parity.summary()}"
    elif artifact.accuracy and not artifact.accuracy.passed:
        artifact.status, artifact.reason = "failed", f"accuracy gate: {artifact.accuracy.summary()}"


def companions(path: Path) -> list[Path]:
    """The files that make up one artifact: an IR's .bin, an engine's sidecar."""
    sidecar = [path.with_name(path.name + ".json")]
    extra = {".xml": [path.with_suffix(".bin")], ".engine": sidecar, ".plan": sidecar}
    return [p for p in extra.get(path.suffix, []) if p.exists()]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in [path, *companions(path)])


def _publish(path: Path, out: Path) -> Path:
    """Move an artifact from staging into ``out``: a kill at any moment leaves the old artifact, none or the new one.

    Every part is fsynced first. The old main file goes before any new part lands (so an old .xml never
    meets a new .bin, nor an old plan a new sidecar); then the companions move, and the main file last.
    """
    out.mkdir(parents=True, exist_ok=True)
    parts = [*companions(path), path]
    for part in parts:
        fsync_file(part)
    (out / path.name).unlink(missing_ok=True)
    for part in parts:
        part.replace(out / part.name)
    fsync_dir(out)
    return out / path.name
