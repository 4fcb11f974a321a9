"""Time edgefer's call path against the bare runtimes, MicroExpNet, batch 1, one thread, in alternating blocks.

Each contender runs a block of calls in turn, block after block, so that whatever else the machine does
falls on all of them alike; the medians of the per-block means and their ratios come from one run.
Contenders: a bare ``InferenceSession.run``; ``Recognizer.classify`` on a float32 and on a uint8 crop;
a bare OpenVINO infer request with its input tensor set once; ``Recognizer(IR).classify``.

    python tools/time_thin_runtime.py [--blocks 40] [--calls 200] [--clock wall|thread] [--json out.json]

``--clock thread`` counts this thread's CPU time only: on a machine shared with other work it leaves out
the time the process waited for a core (ONNX Runtime with one thread runs on the calling thread;
OpenVINO may not, so its figures need the wall clock).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgefer import Recognizer
from edgefer.sysinfo import cpu_features, cpu_name
from edgefer.zoo import PRETRAINED

ONNX = PRETRAINED["microexpnet-ck"].onnx


def alternating_blocks(contenders: dict[str, Callable[[], object]], blocks: int, calls: int,
                       clock=time.perf_counter_ns) -> dict[str, float]:
    """Median over blocks of the mean microseconds per call, each contender timed in turn."""
    for call in contenders.values():
        for _ in range(calls):
            call()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(blocks):
        for name, call in contenders.items():
            start = clock()
            for _ in range(calls):
                call()
            samples[name].append((clock() - start) / calls / 1e3)
    return {name: float(np.median(values)) for name, values in samples.items()}


def onnxruntime_contenders(crop: np.ndarray) -> dict[str, Callable[[], object]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ONNX), options, providers=["CPUExecutionProvider"])
    feed = {"image": crop.reshape(1, 1, 84, 84)}
    recognizer = Recognizer(ONNX, threads=1)
    crop_u8 = crop.astype(np.uint8)
    return {"bare InferenceSession.run": lambda: session.run(None, feed),
            "Recognizer.classify float32": lambda: recognizer.classify(crop),
            "Recognizer.classify uint8": lambda: recognizer.classify(crop_u8)}


def openvino_contenders(crop: np.ndarray, folder: Path) -> dict[str, Callable[[], object]]:
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    from edgefer.convert.openvino_export import export_openvino

    ir = export_openvino(ONNX, folder / "microexpnet-ck.fp32.xml", Recognizer(ONNX).spec)
    compiled = ov.Core().compile_model(str(ir), "CPU", {props.inference_num_threads: 1,
                                                        hints.inference_precision: ov.Type.f32,
                                                        hints.performance_mode: hints.PerformanceMode.LATENCY})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(crop.reshape(1, 1, 84, 84), shared_memory=True))
    recognizer = Recognizer(ir, threads=1)
    return {"bare OpenVINO request, input set once": request.infer,
            "Recognizer(IR).classify float32": lambda: recognizer.classify(crop)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    crop = np.random.default_rng(0).integers(0, 256, (84, 84)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        contenders = onnxruntime_contenders(crop)
        try:
            contenders.update(openvino_contenders(crop, Path(folder)))
        except ImportError:
            print("openvino not installed: ONNX Runtime only", file=sys.stderr)
        clock = time.thread_time_ns if args.clock == "thread" else time.perf_counter_ns
        medians = alternating_blocks(contenders, args.blocks, args.calls, clock)
    bases = {"Recognizer": "bare InferenceSession.run", "Recognizer(IR)": "bare OpenVINO request, input set once"}
    print(f"{cpu_name()} ({', '.join(cpu_features())}); MicroExpNet batch 1, 1 thread; median of {args.blocks} "
          f"alternating blocks of {args.calls} calls, {args.clock} clock")
    ratios = {}
    for name, us in medians.items():
        base = bases.get(name.split(".")[0])
        ratios[name] = us / medians[base] if base in medians else 1.0
        print(f"  {name:<40} {us:8.1f} us" + (f"  {ratios[name]:.2f}x {base}" if base in medians else ""))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "clock": args.clock, "medians_us": medians,
                                         "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
