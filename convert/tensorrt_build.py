"""ONNX -> TensorRT plan with the TensorRT Python API, plus the JSON sidecar the runtime checks.

Explicit batch (the only mode since TensorRT 10) with one optimisation profile over the batch range (or
one per benched batch), repeated ``contexts`` times: TensorRT gives each execution context in concurrent use
of a dynamic-shape engine its own profile, so N copies let N calls run at once.
Networks are strongly typed (TensorRT 10's ``STRONGLY_TYPED``; always on in TensorRT 11, where the
precision builder flags are gone): the ONNX's own types decide the precision. fp16 builds from an
FP16 ONNX (made here from an FP32 one when needed), int8 from a Q/DQ ONNX (explicit quantisation:
NVIDIA's advice is strong typing and no precision flags; its calibrators are deprecated). fp32 clears
TF32. A timing cache made by this TensorRT on this GPU speeds up rebuilds. The plan file holds
nothing but the plan (trtexec and DeepStream read it as is); the metadata goes to
``model.engine.json``. The plan is written first and the sidecar second, each atomically: a sidecar
is never newer than its plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from edgefer.errors import BackendUnavailable, InputError, ModelError, one_line
from edgefer.fileio import atomic_path, atomic_write_bytes, atomic_write_text, file_sha256
from edgefer.limits import check_int
from edgefer.runtime.base import check_model_file
from edgefer.runtime.tensorrt_backend import (
    MAX_WORKERS,
    SIDECAR_FORMAT,
    device_index,
    gpu_identity,
    load_tensorrt,
    primary_context,
    sidecar_path,
    trt_logger,
)
from edgefer.spec import PRECISIONS, ModelSpec

LOG = logging.getLogger(__name__)


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
                 workspace_mb: int = 1024, device: str = "cuda:0", opt_batches: tuple[int, ...] = (),
                 contexts: int = 1) -> Path:
    """Build ``out_engine`` from ``onnx_path`` for batches ``(min, opt, max)`` on ``device`` and write its
    sidecar (which records that device's GPU). ``opt_batches``: one optimisation profile per batch size,
    each tuned for it over the same min..max (TensorRT picks kernels for a profile's opt; the runtime
    runs each call on the profile nearest its batch), instead of the one profile ``batch``. ``contexts``:
    copies of each profile, the calls that may run at once on it."""
    onnx_path, out_engine = Path(onnx_path), Path(out_engine)
    _check_request(precision, batch, workspace_mb, contexts)
    batch = tuple(batch)
    profiles = profile_shapes(batch, opt_batches, contexts)
    check_model_file(onnx_path, "an ONNX model (.onnx)")
    index = device_index(device)
    trt, cuda = load_tensorrt()
    identity = gpu_identity(trt, cuda, index)
    spec = replace(spec, precision=precision)
    context = primary_context(cuda, index)
    context.push()  # TensorRT builds on the current device: the one the sidecar names
    try:
        with _BUILD_LOCK, tempfile.TemporaryDirectory(prefix="edgefer-trt-") as scratch:
            source = _typed_onnx(onnx_path, spec, Path(scratch))
            plan, build = _build(trt, source, spec, profiles, timing_cache, workspace_mb)
    finally:
        context.pop()
    build["cuda_driver"] = cuda.get_driver_version()
    build["device"] = f"cuda:{index}"
    build["source_onnx_sha256"] = file_sha256(onnx_path)
    write_engine(out_engine, plan, sidecar_record(spec, identity, profiles[0], build, plan))
    return out_engine


def write_engine(out_engine: Path, plan: bytes, record: Mapping[str, object]) -> Path:
    """The plan first, then its sidecar, each atomically: a reader that sees the new sidecar finds the new
    plan beside it (the sidecar's sha256 names it), never a new sidecar over an old plan."""
    with atomic_path(out_engine) as tmp:
        tmp.write_bytes(plan)
    atomic_write_text(sidecar_path(out_engine), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return out_engine


def _typed_onnx(onnx_path: Path, spec: ModelSpec, scratch: Path) -> Path:
    """The ONNX whose own types give ``spec.precision`` in a strongly typed network: an FP32 ONNX asked
    for fp16 is converted (float32 inputs and outputs kept); every other case is used as given."""
    if spec.precision != "fp16" or _has_fp16(onnx_path):
        return onnx_path
    from edgefer.convert.onnx_export import to_fp16

    return to_fp16(onnx_path, scratch / f"{onnx_path.stem}.fp16.onnx", spec)


def _has_fp16(onnx_path: Path) -> bool:
    import onnx

    model = onnx.load_model(str(onnx_path), load_external_data=False)
    half = onnx.TensorProto.FLOAT16
    return any(t.data_type == half for t in model.graph.initializer) or any(
        node.op_type == "Cast" and any(a.name == "to" and a.i == half for a in node.attribute)
        for node in model.graph.node)


def profile_shapes(batch: tuple[int, int, int], opt_batches: tuple[int, ...] = (),
                   contexts: int = 1) -> list[tuple[int, int, int]]:
    """The (min, opt, max) batch of each optimisation profile: ``batch`` alone, or one per ``opt_batches``
    size (clipped into min..max, duplicates dropped, ascending); each ``contexts`` times in a row."""
    low, _, high = batch
    opts = sorted({min(max(int(b), low), high) for b in opt_batches})
    shapes = [(low, opt, high) for opt in opts] or [tuple(batch)]
    return [shape for shape in shapes for _ in range(contexts)]


def sidecar_record(spec: ModelSpec, identity: Mapping[str, str], batch: tuple[int, int, int],
                   build: Mapping[str, object], plan: bytes) -> dict[str, object]:
    """The sidecar of a plan: spec, precision, what the plan is tied to, batch range (the first profile's;
    ``build["profiles"]`` lists every profile's opt), build, sha256."""
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


def check_contexts(contexts: object) -> int:
    """Copies of each profile, the TensorRT calls that may run at once: 1..MAX_WORKERS (InputError)."""
    return check_int(contexts, "--contexts", 1, MAX_WORKERS, why="TensorRT calls at once per profile")


def _check_request(precision: str, batch: tuple[int, int, int], workspace_mb: int, contexts: int = 1) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if len(batch) != 3 or not all(isinstance(b, int) for b in batch) or not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise InputError(f"batch range {batch} must be (min, opt, max) with 1 <= min <= opt <= max")
    if workspace_mb < 1:
        raise InputError(f"workspace of {workspace_mb} MiB is too small")
    check_contexts(contexts)


def _build(trt, onnx_path: Path, spec: ModelSpec, profiles: list[tuple[int, int, int]],
           timing_cache: Path | None, workspace_mb: int) -> tuple[bytes, dict[str, object]]:
    """Parse, configure and build; return the serialised plan and a record of the build settings."""
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: TensorRT cannot parse this ONNX ({one_line(errors)})")
    _check_network(network, spec, profiles[0], onnx_path)
    quantized = any(network.get_layer(i).type in (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
                    for i in range(network.num_layers))
    if quantized != (spec.precision == "int8"):
        raise ModelError(f"{onnx_path}: precision {spec.precision} needs "
                         + ("a Q/DQ ONNX (QuantizeLinear/DequantizeLinear nodes, as edgefer convert "
                            "--precision int8 writes)" if not quantized else
                            "an ONNX without Q/DQ nodes; this one is quantised: build it with precision='int8'"))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    tf32 = hasattr(trt.BuilderFlag, "TF32") and spec.precision != "fp32"
    if spec.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; Ampere+ would round fp32 convolutions
    for low, opt, high in profiles:
        profile = builder.create_optimization_profile()
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
    build = {"flags": [], "strongly_typed": True, "tf32": tf32, "workspace_mb": workspace_mb,
             "profiles": [opt for _, opt, _ in profiles],
             "explicit_quantization": quantized, "timing_cache": timing_cache is not None}
    return bytes(plan), build


def network_flags(trt) -> int:
    """Strongly typed where this TensorRT has the flag (10.x; in 11 it is the only mode and the flag a no-op)."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _check_network(network, spec: ModelSpec, batch: tuple[int, int, int], onnx_path: Path) -> None:
    """The parsed network must have the spec's one input (N, C, H, W) and its one output (the runtime
    refuses any other, so the builder does too)."""
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    if list(inputs) != [spec.input_name] or outputs != [spec.output_name]:
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


