"""`edgefer bench`: time every model on every backend here; the paper's table for this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli.common import ProgressBars, fail, ints, names, warn
from edgefer.errors import InputError
from edgefer.fileio import check_output_file
from edgefer.limits import check_options


def bench(
    models: Annotated[str | None, typer.Option(help="Models, comma-separated: family names (p12-s), aliases "
                                                    "(microexpnet, teacher), bundled names (microexpnet-ck), or "
                                                    "model files (x.fp32.onnx, x.fp32.xml, x.engine, "
                                                    "run/model.safetensors) timed as they are. Default: the "
                                                    "paper's five (inception-v3, p12-m, p12-s, p12-xs, "
                                                    "microexpnet).", show_default=False)] = None,
    backends: Annotated[str, typer.Option(help="'all', or comma-separated: torch, torch-cuda, torch-cuda-graph, "
                                               "onnxruntime, onnxruntime-cuda, onnxruntime-trt, openvino, "
                                               "openvino-gpu, tensorrt.")] = "all",
    batch: Annotated[str | None, typer.Option(help="Batch sizes, comma-separated (default: 1,256; the teacher "
                                                   "only 1).")] = None,
    threads: Annotated[str, typer.Option(help="CPU thread counts, comma-separated.")] = "1",
    precisions: Annotated[str, typer.Option(help="fp32, fp16, bf16, int8, comma-separated.")] = "fp32",
    duration: Annotated[float, typer.Option("--min-duration", "--duration", min=0.0,
                                            help="Minimum seconds measured per cell.")] = 1.0,
    min_iters: Annotated[int, typer.Option(min=1, help="Minimum calls measured per cell (heavy models: at most "
                                                     "64). Fewer than 64 leaves no p90, fewer than 100 no p99: "
                                                     "such a cell is marked invalid.")] = 100,
    max_seconds: Annotated[float | None, typer.Option(min=0.0, help="Cap per cell; a cell that reaches it "
                                                                    "before its minimums is marked invalid "
                                                                    "(default: max(20, 10 x duration)).")] = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds past the cap a backend may take on one cell "
                                                         "before it counts as hung and is killed.")] = 120.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every record here (schema 1).")] = None,
    data: Annotated[Path | None, typer.Option(help="Labelled face folder (one sub-folder per label) for a "
                                                   "top-1 accuracy column.")] = None,
    work: Annotated[Path | None, typer.Option(help="Keep artifacts here and reuse them (default: a temporary "
                                                   "folder).")] = None,
    machine: Annotated[str | None, typer.Option(help="Name of this machine in reports (default: host name).")]
    = None,
    frames: Annotated[str | None, typer.Option(metavar="WxH,...", help="Also time whole frames end to end "
                                               "(detection, crop, classification; decode excluded) at these "
                                               "sizes, e.g. 640x480,1280x720,1920x1080. Without --models only "
                                               "frames are timed.")] = None,
    detectors: Annotated[str, typer.Option(help="Face detectors for --frames, comma-separated: blazeface, "
                                                "blazeface-full, haar, haar-exact.")] = "blazeface",
    mode: Annotated[str, typer.Option(help="latency: one request at a time (the paper's table); throughput: "
                                           "--in-flight requests at once (OpenVINO async infer requests with its "
                                           "THROUGHPUT hint, concurrent ONNX Runtime runs, TensorRT streams).")]
    = "latency",
    in_flight: Annotated[int, typer.Option(min=0, help="Requests in flight in throughput mode (default 0: one per "
                                                      "CPU core, at least 2).")] = 0,
    allow_fallback: Annotated[bool, typer.Option("--allow-fallback", help="Let onnxruntime-cuda / onnxruntime-trt "
                                                 "run on CPU when their provider is missing or fails to load; "
                                                 "the records say CPU. Without it that backend is refused.")]
    = False,
) -> None:
    """Time every model on every backend here and print the paper's size and speed table for this machine.

    Exit codes: 0 every cell measured and valid (or not offered here, with --backends all); 4 some cell
    is INVALID (minimum count, duration or percentile samples not reached); 5 a backend named in
    --backends is unavailable or would silently fall back to CPU; 1 nothing could be measured. The JSON
    and the tables are written in every case.
    """
    from edgefer.bench.catalog import check_backend_names
    from edgefer.bench.harness import TimingPlan
    from edgefer.bench.plan import DEFAULT_MODELS, BenchRequest, resolve_models
    from edgefer.bench.report import Report, render_markdown
    from edgefer.bench.run import run_bench
    from edgefer.bench.verdict import bench_failure, busy_warning

    check_options({"duration": duration, "max_seconds": max_seconds, "timeout": timeout, "min_iters": min_iters})
    cap = max_seconds if max_seconds is not None else max(20.0, 10 * duration)
    if cap < duration:
        raise InputError(f"--max-seconds {cap:g} is below --duration {duration:g}")
    from edgefer.bench.frames import parse_frames

    frame_sizes = parse_frames(frames) if frames is not None else ()
    default_models = () if frame_sizes else DEFAULT_MODELS
    request = BenchRequest(
        models=names(models, "--models") if models is not None else default_models, backends=backends,
        precisions=names(precisions.lower(), "--precisions"),
        batches=ints(batch, "--batch") if batch else None, threads=ints(threads, "--threads"),
        plan=TimingPlan(min_iters=min_iters, min_seconds=duration, max_seconds=cap), timeout=timeout,
        work=work, data=data, machine_name=machine, allow_fallback=allow_fallback, frames=frame_sizes,
        detectors=names(detectors.lower(), "--detectors"), mode=mode.lower(), in_flight=in_flight)
    resolve_models(request.models)  # an unknown name fails here, before the progress bar
    if json_path is not None:
        check_output_file(json_path, "--json")
    check_backend_names(backends)
    with ProgressBars() as bars:
        result = run_bench(request, bars.bar("detecting backends"))
    if json_path is not None:
        result.write(json_path)
    busy = busy_warning(result.machine)
    if busy:
        warn(busy)
    report = Report.of([result])
    if result.machine.emulated:
        warn(f"this machine is emulated ({result.machine.emulation}): the timings say nothing about a real "
             "device's speed (the JSON records it; edgefer report keeps it apart)")
    for table in report.tables[1:]:  # the machines table is for reports of several machines
        typer.echo(render_markdown(table))
    if any(not r.frame for r in result.records):  # a --frames-only run times detectors, not models
        typer.echo(recommendation_text(result.records))
    typer.echo(f"{len(result.records)} records in {result.wall_seconds:.0f} s"
               + (f"; written to {json_path}" if json_path else ""), err=True)
    failure = bench_failure(result, named=backends.strip().lower() != "all")
    if failure is not None:
        raise fail(str(failure), failure.exit_code)


def recommendation_text(records: list) -> str:
    """The bench's last word: per model, the fastest valid backend x precision for latency and for throughput,
    and every precision measured slower than fp32 on its backend (why it was not picked)."""
    from edgefer.bench.recommend import recommend, slower_than_fp32

    picks = recommend(records)
    lines = ["## Recommendation on this machine", ""]
    lines += [f"- {pick.line()}" for pick in picks] or ["- nothing measured passed its checks"]
    slower = slower_than_fp32(records)
    if slower:
        lines += ["", "Not picked, measured slower than fp32 on the same backend:"] + [f"- {s}" for s in slower]
    return "\n".join(lines) + "\n"
