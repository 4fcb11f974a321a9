"""Benchmark validity and exit codes: real `edgefer bench` runs on ONNX Runtime, real worker processes.

A cell that did not reach its minimum count or duration, or has too few samples for the tail
percentiles it reports (LoadGen: 64 for p90, 100 for p99), is INVALID: still written and shown,
but `edgefer bench` exits 4. A GPU backend of ONNX Runtime without its provider is refused (exit 5,
no numbers) unless --allow-fallback, which runs it on CPU and labels it so.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from bench_cli import cli  # noqa: E402

from edgefer.bench.harness import TimingPlan, measure, summarize  # noqa: E402
from edgefer.bench.jobs import TimeJob  # noqa: E402
from edgefer.bench.machine import Machine  # noqa: E402
from edgefer.bench.plan import ArtifactInfo, ModelInfo, heavy_plan  # noqa: E402
from edgefer.bench.records import BenchResult, Record  # noqa: E402
from edgefer.bench.verdict import bench_failure, busy_warning  # noqa: E402
from edgefer.bench.worker import time_backend  # noqa: E402
from edgefer.errors import BackendUnavailable, FallbackRefused, NothingMeasured, QualityError  # noqa: E402
from edgefer.runtime.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from edgefer.zoo import PRETRAINED  # noqa: E402

NO_CUDA_EP = "CUDAExecutionProvider" not in ort.get_available_providers()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """One work folder for the module: the MicroExpNet ONNX artifact is built once and reused."""
    return tmp_path_factory.mktemp("bench-work")


def run(work: Path, out: Path, *args) -> tuple[object, dict]:
    result = cli("bench", "--models", "microexpnet", "--batch", "1", "--json", out, "--work", work, *args)
    return result, json.loads(out.read_text()) if out.exists() else {}


# ---------------------------------------------------------------- the harness's rule


def test_too_few_samples_for_a_reported_percentile_is_invalid():
    plan = TimingPlan(min_iters=1, min_seconds=0.0)
    ms = 1_000_000
    assert summarize([ms] * 100, plan).valid
    short = summarize([ms] * 80, plan)
    assert short.p90 is not None and short.p99 is None
    assert not short.valid and short.invalid_reason == "80 samples < 100 needed for p99"
    p90_only = replace(plan, percentiles=(90,))
    assert summarize([ms] * 64, p90_only).valid
    tiny = summarize([ms] * 63, p90_only)
    assert not tiny.valid and tiny.p90 is None and tiny.invalid_reason == "63 samples < 64 needed for p90"


def test_heavy_models_measure_64_calls_and_report_p90_only():
    plan = heavy_plan(TimingPlan())
    assert plan.min_iters == 64 and plan.percentiles == (90,)
    timing = measure(lambda: sum(range(500)), replace(plan, min_seconds=0.0))
    assert timing.valid and timing.iterations == 64 and timing.warmup_iterations == 2
    assert timing.p90 is not None and timing.p99 is None


# ---------------------------------------------------------------- an invalid run through the CLI


@pytest.fixture(scope="module")
def invalid_run(work, tmp_path_factory):
    """30 calls, no minimum duration: fewer samples than p90 needs, so the cell is invalid."""
    out = tmp_path_factory.mktemp("invalid") / "run.json"
    return run(work, out, "--backends", "onnxruntime", "--min-iters", "30", "--min-duration", "0")


@pytest.mark.slow
def test_invalid_cell_exits_4_and_is_still_written_and_shown(invalid_run):
    result, data = invalid_run
    assert result.exit_code == 4, result.output
    (record,) = data["records"]
    assert record["status"] == "invalid" and not record["run"]["valid"]
    assert record["reason"] == record["run"]["invalid_reason"] == "30 samples < 64 needed for p90; " \
                                                                   "30 samples < 100 needed for p99"
    assert record["latency_ms"]["p90"] is None and record["latency_ms"]["p99"] is None
    assert record["latency_ms"]["median"] > 0  # the numbers are kept, marked, never passed off as valid
    assert "†" in result.output and "INVALID: 30 samples < 64 needed for p90" in result.output
    assert "cells INVALID" in result.output


@pytest.mark.slow
def test_record_reports_the_run_and_keeps_load_time_out_of_latency(invalid_run):
    _, data = invalid_run
    (record,) = data["records"]
    run_, latency = record["run"], record["latency_ms"]
    assert run_["iterations"] == 30 and run_["warmup_iterations"] >= 10 and run_["warmup_seconds"] > 0
    assert set(latency) == {"median", "p90", "p99", "mean", "std", "min", "max", "cv"}
    assert latency["min"] <= latency["median"] <= latency["max"] and latency["cv"] >= 0
    # the measured seconds are exactly the timed calls: nothing else (load, first call) is in them
    assert run_["seconds"] == pytest.approx(run_["iterations"] * latency["mean"] / 1e3, rel=1e-9)
    assert record["load_seconds"] > 0 and record["first_call_ms"] > 0
    assert record["threads"] == 1 and record["runtime_precision"] == "fp32"
    assert record["extra"]["providers"] == "CPUExecutionProvider"
    assert re.fullmatch(r"[0-9a-f]{64}", record["artifact_sha256"])
    machine = data["machine"]
    assert machine["libraries"]["onnxruntime"] == ort.__version__ and machine["cores"] >= 1
    assert {"governor", "cpu_flags", "load_average", "load_average_end", "gpus", "gpu_driver",
            "edgefer_version", "git_sha"} <= set(machine)
    assert data["options"]["plan"]["min_iters"] == 30 and data["options"]["plan"]["min_seconds"] == 0


@pytest.mark.slow
def test_valid_run_exits_0(work, tmp_path):
    result, data = run(work, tmp_path / "run.json", "--backends", "onnxruntime", "--min-iters", "100",
                       "--min-duration", "0")
    assert result.exit_code == 0, result.output
    (record,) = data["records"]
    assert record["status"] == "ok" and record["run"]["iterations"] == 100 and record["latency_ms"]["p99"] > 0


# ---------------------------------------------------------------- execution-provider fallback


@pytest.mark.slow
@pytest.mark.skipif(not NO_CUDA_EP, reason="this onnxruntime has the CUDA provider")
def test_missing_cuda_provider_exits_5_with_no_numbers(work, tmp_path):
    result, data = run(work, tmp_path / "run.json", "--backends", "onnxruntime-cuda")
    assert result.exit_code == 5, result.output
    (record,) = data["records"]
    assert record["status"] == "unavailable" and "CUDAExecutionProvider" in record["reason"]
    assert record["latency_ms"] is None and record["throughput_ips"] is None
    assert "backend onnxruntime-cuda unavailable" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not NO_CUDA_EP, reason="this onnxruntime has the CUDA provider")
def test_allow_fallback_runs_on_cpu_and_says_so(work, tmp_path):
    result, data = run(work, tmp_path / "run.json", "--backends", "onnxruntime-cuda", "--allow-fallback",
                       "--min-iters", "100", "--min-duration", "0")
    assert result.exit_code == 0, result.output
    (record,) = data["records"]
    assert record["status"] == "ok" and record["device"] == "cpu"
    assert record["extra"]["providers"] == "CPUExecutionProvider"
    assert "no CUDAExecutionProvider" in record["extra"]["fallback"]
    assert "cpu (CPU fallback)" in result.output


@pytest.mark.skipif(not NO_CUDA_EP, reason="this onnxruntime has the CUDA provider")
def test_backend_and_recognizer_refuse_a_gpu_they_cannot_use():
    from edgefer import Recognizer

    path = PRETRAINED["microexpnet-ck"].onnx
    with pytest.raises(FallbackRefused, match="no CUDAExecutionProvider") as refused:
        Recognizer("microexpnet-ck", device="cuda")
    assert isinstance(refused.value, BackendUnavailable) and refused.value.exit_code == 5
    backend = OnnxRuntimeBackend(path, device="cuda", allow_fallback=True)
    assert backend.device == "cpu" and backend.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in backend.fallback
    pixels = np.zeros((1, 1, 84, 84), np.float32)
    assert np.array_equal(backend.run(pixels), OnnxRuntimeBackend(path).run(pixels))
    assert OnnxRuntimeBackend(path).fallback == ""


@pytest.mark.skipif(not NO_CUDA_EP, reason="this onnxruntime has the CUDA provider")
def test_a_refused_fallback_fails_the_run_even_with_all_backends(tmp_path):
    """The worker records FallbackRefused as such; the bench's verdict reads that flag, never the reason text."""
    artifact = ArtifactInfo("onnx", "fp32", str(PRETRAINED["microexpnet-ck"].onnx))
    job = TimeJob(ModelInfo("microexpnet-ck", "MicroExpNet", 65_000), "onnxruntime-cuda", [("fp32", 1, 1)],
                  {"fp32": artifact}, TimingPlan(min_iters=1, min_seconds=0.0), str(tmp_path / "out.jsonl"))
    items = []
    time_backend(job, items.append)
    (refused,) = [Record.from_dict(item["record"]) for item in items]
    assert refused.status == "unavailable" and refused.fallback_refused and refused.timing is None
    assert "CUDAExecutionProvider" in refused.reason
    short = summarize([1_000_000] * 30, TimingPlan(min_iters=1, min_seconds=0.0))  # too few samples for p90
    invalid = Record("microexpnet-ck", "onnxruntime", "fp32", 1, 1, "invalid", reason=short.invalid_reason,
                     timing=short)
    machine = Machine("m", "cpu", cores=2, platform="linux", python="3")

    failure = bench_failure(BenchResult(machine, [invalid, refused]), named=False)
    assert type(failure) is FallbackRefused and failure.exit_code == 5 and "onnxruntime-cuda" in str(failure)
    absent = replace(refused, fallback_refused=False)  # a backend merely not here: listed with 'all'
    failure = bench_failure(BenchResult(machine, [invalid, absent]), named=False)
    assert type(failure) is QualityError and failure.exit_code == 4 and "1 of 2 cells INVALID" in str(failure)
    assert type(bench_failure(BenchResult(machine, [absent]), named=True)) is BackendUnavailable
    nothing = bench_failure(BenchResult(machine, [absent]), named=False)
    assert type(nothing) is NothingMeasured and nothing.exit_code == 1
    enough = summarize([1_000_000] * 100, TimingPlan(min_iters=1, min_seconds=0.0))
    valid = replace(invalid, status="ok", timing=enough)
    assert bench_failure(BenchResult(machine, [valid, absent]), named=False) is None


def test_busy_machine_warning():
    machine = Machine("m", "cpu", cores=2, platform="linux", python="3", load_average=[0.4, 0.3, 0.2],
                      load_average_end=[1.5, 0.5, 0.3])
    assert busy_warning(machine) == ("the machine was busy (load average up to 1.5 on 2 cores): the timings are "
                                     "likely inflated")
    assert busy_warning(replace(machine, load_average_end=[0.9, 0.5, 0.3])) is None
