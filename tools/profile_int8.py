"""Where INT8 time goes on this CPU: ONNX Runtime's profiler and OpenVINO's PERF_COUNT, fp32 against Q/DQ variants.

Builds the model's fp32 ONNX with ``edgefer convert`` and three Q/DQ variants calibrated on the same face
crops: S8S8 per-channel (edgefer's int8, the one TensorRT takes too), U8S8 per-channel and U8S8 per-channel
with reduce_range. Prints, for each: top-1 agreement with fp32 on real face crops (the bundled face's and
the astronaut's 8 windows and their mirrors), throughput at batch 256 (alternating blocks), ONNX Runtime's
node time by operator at batch 256 on one thread, and OpenVINO's slowest layers with their kernels. Needs
edgefer[train,openvino] (torch for the conversion):

    python tools/profile_int8.py [--model microexpnet-ck] [--threads 2] [--blocks 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # name -> quantize_static keyword arguments
    "S8S8 per-channel (edgefer)": {"activation_type": "QInt8", "reduce_range": False,
                                   "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True}},
    "U8S8 per-channel": {"activation_type": "QUInt8", "reduce_range": False,
                         "extra_options": {"WeightSymmetric": True}},
    "U8S8 per-channel reduce_range": {"activation_type": "QUInt8", "reduce_range": True,
                                      "extra_options": {"WeightSymmetric": True}},
}


def faces() -> np.ndarray:
    """Real face crops (N, 1, 84, 84): the bundled face's 16 validation crops and the astronaut's 16."""
    from edgefer.convert.calibration import builtin_validation_crops
    from edgefer.preprocess import FaceDetector, read_image, training_windows

    windows, _ = training_windows(read_image(REPO_ROOT / "tests" / "fixtures" / "astronaut.png"), FaceDetector())
    astronaut = windows.astype(np.float32)[:, None]
    return np.concatenate([builtin_validation_crops(), astronaut, astronaut[..., ::-1]])


def quantize(fp32: Path, out: Path, calibration: np.ndarray, options: dict) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgefer.convert.quantize import CropReader

    quantize_static(str(fp32), str(out), CropReader("image", calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=getattr(QuantType, options["activation_type"]),
                    weight_type=QuantType.QInt8, reduce_range=options["reduce_range"],
                    calibrate_method=CalibrationMethod.MinMax, extra_options=options["extra_options"])
    return out


def session(path: Path, threads: int, profile: str | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def alternating_throughput(calls: dict, batch: int, blocks: int) -> dict[str, float]:
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(blocks):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(3):
                call()
            samples[name].append(3 * batch / (time.perf_counter() - start))
    return {name: float(np.median(values)) for name, values in samples.items()}


def operator_times(path: Path, pixels: np.ndarray, folder: Path) -> tuple[float, dict[str, float]]:
    """ONNX Runtime's node time per call (ms) and its share by operator, one thread."""
    sess = session(path, 1, str(folder / f"profile-{path.stem}"))
    for _ in range(10):
        sess.run(None, {"image": pixels})
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    return total / 10 / 1e3, {op: us / total for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])}


def openvino_layers(xml: Path, pixels: np.ndarray, threads: int, precision: str, top: int = 5) -> list[str]:
    """OpenVINO's slowest layers, compiled as edgefer compiles it: fp32 pinned to f32, int8 on the default."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {props.inference_num_threads: threads, props.enable_profiling: True}
    if precision == "fp32":
        config[hints.inference_precision] = ov.Type.f32
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    request = compiled.create_infer_request()
    request.infer({0: pixels})
    request.infer({0: pixels})
    rows = sorted(((p.real_time.total_seconds() * 1e3, p.node_type, p.exec_type, p.node_name)
                   for p in request.get_profiling_info()), reverse=True)[:top]
    return [f"{ms:8.2f} ms  {kind:<16} {kernel:<28} {name}" for ms, kind, kernel, name in rows]


def main(argv: list[str] | None = None) -> int:
    from edgefer.convert.openvino_export import export_openvino
    from edgefer.convert.pipeline import ConvertRequest, convert
    from edgefer.runtime.base import softmax
    from edgefer.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from edgefer.sysinfo import cpu_flags, cpu_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="microexpnet-ck")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx512_", "amx")) or f in ("avx2", "avx_vnni"))
    print(f"{cpu_name()} ({', '.join(flags)}); {args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        [fp32] = convert(ConvertRequest(args.model, ("onnx",), "fp32", folder), progress=lambda _: None)
        from edgefer.convert.calibration import calibration_and_validation

        calibration, _ = calibration_and_validation(None)
        paths = {"fp32": fp32.path}
        paths.update({name: quantize(fp32.path, folder / f"int8-{i}.onnx", calibration, options)
                      for i, (name, options) in enumerate(VARIANTS.items())})
        crops = faces()
        reference = session(fp32.path, 1).run(None, {"image": crops})[0]
        batch = np.random.default_rng(0).integers(0, 256, (256, 1, 84, 84)).astype(np.float32)
        sessions = {name: session(path, args.threads) for name, path in paths.items()}
        speed = alternating_throughput({n: (lambda s=s: s.run(None, {"image": batch})) for n, s in sessions.items()},
                                       len(batch), args.blocks)
        for name, path in paths.items():
            got = sessions[name].run(None, {"image": crops})[0]
            agree = float((got.argmax(1) == reference.argmax(1)).mean())
            dp = float(np.abs(softmax(got) - softmax(reference)).max())
            node_ms, shares = operator_times(path, batch, folder)
            print(f"\n{name}: {speed[name]:,.0f} img/s at batch 256, {args.threads} threads "
                  f"({speed[name] / speed['fp32']:.2f}x fp32); top-1 vs fp32 {agree:.1%} on {len(crops)} faces, "
                  f"max |dp| {dp:.3f}\n  ONNX Runtime, 1 thread: {node_ms:.1f} ms of node time per batch: "
                  + ", ".join(f"{op} {share:.0%}" for op, share in list(shares.items())[:6]))
        spec = OnnxRuntimeBackend(fp32.path).spec
        from dataclasses import replace

        for name, path, precision in (("fp32", fp32.path, "fp32"),
                                      ("S8S8 per-channel (edgefer)", paths["S8S8 per-channel (edgefer)"], "int8")):
            xml = export_openvino(path, folder / f"ov-{precision}.xml", replace(spec, precision=precision), precision)
            print(f"\nOpenVINO {name}, batch 256, {args.threads} threads, slowest layers (PERF_COUNT):")
            print("\n".join(openvino_layers(xml, batch, args.threads, precision)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
