"""ONNX -> TensorRT plan with the TensorRT Python API, plus the JSON sidecar the runtime checks.

Explicit batch (the only mode since TensorRT 10) with one optimisation profile over the batch range;
fp16 sets the FP16 flag; int8 takes a Q/DQ ONNX (explicit quantisation: TensorRT's calibrators are
deprecated) and sets INT8 with FP16. A timing cache made by this TensorRT on this GPU speeds up
rebuilds. The plan file holds nothing but the plan (trtexec and DeepStream read it as is); the
metadata goes to ``model.engine.json``. Both are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from edgefer.errors import BackendUnavailable, InputError, ModelError, one_line
from edgefer.fileio import atomic_path, atomic_write_bytes, atomic_write_text, file_sha256
from edgefer.runtime.base import check_model_file
from edgefer.runtime.tensorrt_backend import (
    SIDECAR_FORMAT,
    gpu_identity,
    load_tensorrt,
    sidecar_path,
    trt_logger,
)
from edgefer.spec import PRECISIONS, ModelSpec

LOG = logging.getLogger(__name__)

#: Builder flags per precision (TF32 is cleared for fp32 so fp32 engines match ONNX Runtime).
FLAGS = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}

_BUILD_LOCK = threading.Lock()  # a TensorRT builder is used by one thread at a time


def tensorrt_available() -> str | None:
    """None when TensorRT, pycuda and a CUDA GPU are usable here, else the reason why not."""
    try:
        load_tensorrt()
    except BackendUnavailable as err:
        return str(err)
    return None


def build_engine(onnx_path: Path, out_engine: Path, spec: ModelSpec, precision: str = "fp32",
                 batch: tuple[int, int, int] = (1, 1, 256), timing_cache: Path | None = None,
                 workspace_mb: int = 1024) -> Path:
    """Build ``out_engine`` from ``onnx_path`` for batches ``(min, opt, max)`` and write its sidecar."""
    onnx_path, out_engine = Path(onnx_path), Path(out_engine)
    _check_request(precision, batch, workspace_mb)
    check_model_file(onnx_path, "an ONNX model (.onnx)")
    trt, cuda = load_tensorrt()
    identity = gpu_identity(trt, cuda, 0)
    spec = replace(spec, precision=precision)
    with _BUILD_LOCK:
        plan, build = _build(trt, onnx_path, spec, batch, timing_cache, workspace_mb)
    build["cuda_driver"] = cuda.get_driver_version()
    build["source_onnx_sha256"] = file_sha256(onnx_path)
    record = sidecar_record(spec, identity, batch, build, plan)
    atomic_write_text(sidecar_path(out_engine), json.dumps(record, indent=2, sort_keys=True) + "\n")
    with atomic_path(out_engine) as tmp:  # the plan last: a reader never pairs a new plan with an old sidecar
        tmp.write_bytes(plan)
    return out_engine


def sidecar_record(spec: ModelSpec, identity: Mapping[str, str], batch: tuple[int, int, int],
                   build: Mapping[str, object], plan: bytes) -> dict[str, object]:
    """The sidecar of a plan: spec, precision, what the plan is tied to, batch range, build, sha256."""
    low, opt, high = batch
    return {
        "format": SIDECAR_FORMAT,
        "spec": json.loads(spec.to_json()),
        "precision": spec.precision,
        "tensorrt": identity["tensorrt"],
        "gpu": identity["gpu"],
        "compute_capability": identity["compute_capability"],
        "batch": {"min": low, "opt": opt, "max": high},
        "build": dict(build),
        "plan_sha256": hashlib.sha256(plan).hexdigest(),
        "plan_bytes": len(plan),
        "edgefer_version": spec.edgefer_version,
    }


def _check_request(precision: str, batch: tuple[int, int, int], workspace_mb: int) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if len(batch) != 3 or not all(isinstance(b, int) for b in batch) or not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise InputError(f"batch range {batch} must be (min, opt, max) with 1 <= min <= opt <= max")
    if workspace_mb < 1:
        raise InputError(f"workspace of {workspace_mb} MiB is too small")


def _build(trt, onnx_path: Path, spec: ModelSpec, batch: tuple[int, int, int], timing_cache: Path | None,
           workspace_mb: int) -> tuple[bytes, dict[str, object]]:
    """Parse, configure and build; return the serialised plan and a record of the build settings."""
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: every network is explicit batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: TensorRT cannot parse this ONNX ({one_line(errors)})")
    _check_network(network, spec, batch, onnx_path)
    quantized = any(network.get_layer(i).type in (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
                    for i in range(network.num_layers))
    if quantized != (spec.precision == "int8"):
        raise ModelError(f"{onnx_path}: precision {spec.precision} needs "
                         + ("a Q/DQ ONNX (QuantizeLinear/DequantizeLinear nodes, as edgefer convert "
                            "--precision int8 writes)" if not quantized else
                            "an ONNX without Q/DQ nodes; this one is quantised: build it with precision='int8'"))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if spec.precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; Ampere+ would round fp32 convolutions
    for flag in FLAGS[spec.precision]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    low, opt, high = batch
    profile.set_shape(spec.input_name, (low, *spec.input_shape), (opt, *spec.input_shape),
                      (high, *spec.input_shape))
    config.add_optimization_profile(profile)
    cache = _timing_cache(config, timing_cache)
    config.set_timing_cache(cache, ignore_mismatch=False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(f"{onnx_path}: TensorRT could not build an engine ({logger.last_error()})")
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    build = {"flags": list(FLAGS[spec.precision]), "tf32": spec.precision != "fp32",
             "workspace_mb": workspace_mb, "explicit_quantization": quantized,
             "timing_cache": timing_cache is not None}
    return bytes(plan), build


def _check_network(network, spec: ModelSpec, batch: tuple[int, int, int], onnx_path: Path) -> None:
    """The parsed network must have the spec's one input (N, C, H, W) and its output."""
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    if list(inputs) != [spec.input_name] or spec.output_name not in outputs:
        raise ModelError(f"{onnx_path}: expected input {spec.input_name!r} and output {spec.output_name!r}, "
                         f"found inputs {list(inputs)} and outputs {outputs}")
    dims = inputs[spec.input_name]
    if len(dims) != 4 or dims[1:] != spec.input_shape:
        raise ModelError(f"{onnx_path}: input shaped {dims}, the spec says (N, "
                         f"{', '.join(map(str, spec.input_shape))})")
    if dims[0] != -1 and tuple(batch) != (dims[0],) * 3:
        raise ModelError(f"{onnx_path}: exported with a fixed batch of {dims[0]}; build it with "
                         f"batch=({dims[0]}, {dims[0]}, {dims[0]}) or export a dynamic batch")


def _timing_cache(config, path: str | os.PathLike | None):
    """An empty timing cache, merged with the one at ``path`` when this TensorRT on this GPU made it."""
    cache = config.create_timing_cache(b"")
    if path is not None and Path(path).is_file():
        try:
            stored = config.create_timing_cache(Path(path).read_bytes())
            if not cache.combine(stored, ignore_mismatch=False):
                LOG.info("%s: timing cache from another TensorRT or GPU, starting afresh", path)
        except Exception as err:  # noqa: BLE001 - an unusable cache only costs build time
            LOG.warning("%s: unreadable timing cache, starting afresh (%s)", path, one_line(err))
    return cache


