"""`edgefer bench` and `edgefer report`: real artifacts, real runtimes, real worker processes."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from bench_cli import cli  # noqa: E402

from edgefer.bench.harness import TimingPlan, measure, summarize  # noqa: E402
from edgefer.bench.plan import BenchRequest  # noqa: E402
from edgefer.bench.records import read_result  # noqa: E402
from edgefer.bench.report import Report  # noqa: E402
from edgefer.bench.run import run_bench  # noqa: E402
from edgefer.spec import LABELS  # noqa: E402

QUICK = TimingPlan(warmup_iters=3, warmup_seconds=0.02, min_iters=20, min_seconds=0.1, max_seconds=1.0)
REQUIRED = ("model", "backend", "precision", "batch", "threads", "params", "size_mb", "status", "latency_ms",
            "throughput_ips", "parity")


def busy(n: int = 2000) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


# ---------------------------------------------------------------- harness


def test_harness_counts_and_orders_statistics():
    plan = TimingPlan(warmup_iters=5, warmup_seconds=0.0, min_iters=200, min_seconds=0.0, max_seconds=30.0)
    timing = measure(busy, plan)
    assert timing.valid and timing.invalid_reason == ""
    assert timing.iterations == 200 and timing.warmup_iterations >= 5
    assert 0 < timing.min <= timing.median <= timing.p90 <= timing.p99 <= timing.max
    assert timing.std >= 0 and timing.seconds > 0


def test_summary_of_known_samples():
    plan = TimingPlan(min_iters=100, min_seconds=0.0)
    timing = summarize([i * 1_000_000 for i in range(1, 101)], plan)  # 1..100 ms
    assert timing.median == 50.5 and timing.mean == 50.5 and timing.min == 1.0 and timing.max == 100.0
    assert timing.p90 == pytest.approx(90.1) and timing.p99 == pytest.approx(99.01)
    assert timing.seconds == pytest.approx(5.050)
    few = summarize([1_000_000] * 10, TimingPlan(min_iters=10, min_seconds=0.0))
    assert few.p90 is None and few.p99 is None  # too few samples for a tail, so the run is invalid
    assert not few.valid and "10 samples < 64 needed for p90" in few.invalid_reason


def test_harness_marks_a_capped_run_invalid():
    """A cap reached before the minimum count stops the cell and marks it invalid (counts, not clocks)."""
    plan = TimingPlan(warmup_iters=1, warmup_seconds=0.0, min_iters=10**7, min_seconds=0.0, max_seconds=0.05)
    timing = measure(busy, plan)
    assert not timing.valid and "iterations < minimum" in timing.invalid_reason
    assert 0 < timing.iterations < 10**7


# ---------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def run_json(tmp_path_factory) -> Path:
    """MicroExpNet on torch, ONNX Runtime, OpenVINO and TensorRT (absent here), batch 1 and 8, via the CLI.

    TensorRT is named, so where it is unavailable the run exits 5, after writing every record and the tables."""
    pytest.importorskip("openvino")
    from edgefer.sysinfo import detect

    folder = tmp_path_factory.mktemp("bench")
    out = folder / "run.json"
    result = cli("bench", "--models", "microexpnet", "--backends", "torch,onnxruntime,openvino,tensorrt",
                 "--batch", "1,8", "--duration", "0.1", "--min-iters", "100", "--json", out, "--work", folder / "work",
                 "--machine", "box-a")
    trt_here = any(b.name == "tensorrt" and b.available for b in detect(include_torch=False).backends)
    assert result.exit_code == (0 if trt_here else 5), result.output
    assert trt_here or "backend tensorrt unavailable here" in result.output
    assert "Per-image latency at batch 1" in result.output
    return out


@pytest.mark.slow
def test_run_writes_schema_1_records(run_json):
    data = json.loads(run_json.read_text())
    assert data["schema"] == 1
    machine = data["machine"]
    assert machine["name"] == "box-a" and machine["cores"] >= 1 and machine["cpu"]
    assert {"gpus", "gpu_driver", "libraries", "backends", "memory_gb", "load_average"} <= set(machine)
    assert machine["libraries"]["onnxruntime"]
    records = data["records"]
    assert len(records) == 4 * 2  # every cell has a record, measured or not
    for record in records:
        assert set(REQUIRED) <= set(record)
    measured = [r for r in records if r["backend"] in ("torch", "onnxruntime", "openvino")]
    for r in measured:
        assert r["status"] == "ok", r
        assert r["model"] == "p12-xxs" and r["params"] == 65_000 and r["threads"] == 1
        latency = r["latency_ms"]
        assert 0 < latency["median"] < 1000 and latency["mean"] > 0 and latency["p90"] >= latency["median"]
        assert r["throughput_ips"] == pytest.approx(r["batch"] * 1e3 / latency["mean"])
        assert r["run"]["valid"] and r["run"]["iterations"] >= 100 and latency["p99"] >= latency["p90"]
        assert r["runtime_precision"] == "fp32"  # OpenVINO's bf16 default would show here
        assert r["parity"]["passed"] and r["parity"]["max_abs_diff"] <= 1e-4
        assert r["load_seconds"] > 0 and r["peak_rss_mb"] > 10 and r["first_call_ms"] > 0
        assert 0.2 < r["size_mb"] < 0.4  # 65K float32 weights, in the real file of each format


@pytest.mark.slow
def test_tensorrt_rows_are_measured_or_say_why_not(run_json):
    """Where TensorRT works its rows are measured; elsewhere each says why not (and has no timing)."""
    from edgefer.sysinfo import detect

    result = read_result(run_json)
    trt = [r for r in result.records if r.backend == "tensorrt"]
    assert len(trt) == 2
    if any(b.name == "tensorrt" and b.available for b in detect(include_torch=False).backends):
        assert all(r.status == "ok" and r.timing is not None and r.device.startswith("cuda") for r in trt), trt
    else:
        assert all(r.status == "unavailable" and r.reason and r.timing is None for r in trt)


@pytest.mark.slow
def test_report_merges_machines(run_json, tmp_path):
    second = tmp_path / "second.json"
    data = json.loads(run_json.read_text())
    data["machine"]["name"] = "box-b"
    second.write_text(json.dumps(data))
    out = tmp_path / "report"
    result = cli("report", run_json, second, "--out", out)
    assert result.exit_code == 0, result.output
    markdown = (out / "report.md").read_text()
    assert "box-a onnxruntime ms" in markdown and "box-b openvino ms" in markdown
    assert "MicroExpNet" in markdown and "0.53" in markdown  # the paper's i7 figure beside ours
    with open(out / "latency.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["p12-xxs"]
    assert float(rows[0]["box-a onnxruntime ms"]) > 0 and float(rows[0]["paper i7-7700HQ ms"]) == 0.53
    assert (out / "throughput.csv").is_file() and (out / "records.csv").is_file()
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_keeps_emulated_machines_apart(run_json, tmp_path):
    """An emulated machine (qemu-user) gets its own tables, marked so; the real machine's tables hold only it."""
    emulated = tmp_path / "emulated.json"
    data = json.loads(run_json.read_text())
    data["machine"].update(name="arm-qemu", emulated=True, emulation="qemu-user: aarch64 on x86-64")
    emulated.write_text(json.dumps(data))
    out = tmp_path / "report"
    result = cli("report", run_json, emulated, "--out", out)
    assert result.exit_code == 0, result.output
    markdown = (out / "report.md").read_text()
    sections = {part.split("\n", 1)[0]: part for part in markdown.split("## ")[1:]}
    real = sections["Per-image latency at batch 1"]
    emulated_part = sections["Per-image latency at batch 1 — EMULATED machines (qemu): not a real device's speed"]
    # one machine in each table: its columns are unprefixed, and the other machine is in neither
    assert "| onnxruntime ms |" in real and "arm-qemu" not in real and "box-a" not in real
    assert "| onnxruntime ms |" in emulated_part and "box-a" not in emulated_part
    assert "Throughput (images/s) — EMULATED machines (qemu): not a real device's speed" in sections
    assert "| arm-qemu (emulated) |" in sections["Machines"] and "arm-qemu is EMULATED (qemu-user" in markdown
    assert (out / "latency-emulated.csv").is_file()
    alone = tmp_path / "alone"
    assert cli("report", emulated, "--out", alone).exit_code == 0
    assert "## Per-image latency at batch 1 — EMULATED" in (alone / "report.md").read_text()


def test_emulation_is_detected_from_the_environment(monkeypatch):
    from edgefer.bench.machine import describe_machine
    from edgefer.sysinfo import EMULATED_ENV, detect, emulation

    monkeypatch.delenv(EMULATED_ENV, raising=False)
    assert emulation() == ""  # this x86-64 machine runs natively
    monkeypatch.setenv(EMULATED_ENV, "qemu-user aarch64")
    machine = describe_machine(detect(include_torch=False), "arm")
    assert machine.emulated and machine.emulation == "qemu-user aarch64"
    assert machine.to_dict()["emulated"] is True


def test_report_refuses_a_foreign_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 7}')
    from edgefer.bench.report import read_results
    from edgefer.errors import InputError

    with pytest.raises(InputError, match="schema"):
        read_results([bad])


# ---------------------------------------------------------------- failures are contained


def _work_copy(run_json: Path, tmp_path: Path) -> Path:
    """The fixture's built artifacts, reused (the manifest makes the build step a no-op)."""
    work = tmp_path / "work"
    shutil.copytree(run_json.parent / "work" / "p12-xxs", work / "p12-xxs")
    return work


@pytest.mark.slow
@pytest.mark.parametrize("fault,signal_name", [("crash", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_crashing_worker_gives_failed_records_and_the_run_goes_on(run_json, tmp_path, monkeypatch, fault,
                                                                  signal_name):
    """The worker process really dies (abort(), or a SIGSEGV as a broken runtime gives): EDGEFER_BENCH_FAULT."""
    monkeypatch.setenv("EDGEFER_BENCH_FAULT", f"openvino:{fault}")
    plan = TimingPlan(warmup_iters=1, warmup_seconds=0.0, min_iters=10**7, min_seconds=0.0, max_seconds=0.1)
    request = BenchRequest(models=("microexpnet",), backends="onnxruntime,openvino", batches=(1,), plan=plan,
                           work=_work_copy(run_json, tmp_path))
    records = {r.backend: r for r in run_bench(request).records}
    assert records["openvino"].status == "failed" and f"crashed ({signal_name})" in records["openvino"].reason
    assert records["openvino"].timing is None
    ort = records["onnxruntime"]  # ran after the crash; its cap came before its minimum count
    assert ort.status == "invalid" and "iterations < minimum" in ort.reason and ort.timing.iterations > 0


@pytest.mark.slow
def test_hanging_worker_is_killed_after_the_timeout(run_json, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFER_BENCH_FAULT", "onnxruntime:hang")
    request = BenchRequest(models=("microexpnet",), backends="onnxruntime,openvino", batches=(1,), plan=QUICK,
                           timeout=1.0, work=_work_copy(run_json, tmp_path))
    start = time.perf_counter()
    records = {r.backend: r for r in run_bench(request).records}
    assert time.perf_counter() - start < 30
    assert records["onnxruntime"].status == "failed" and "timed out" in records["onnxruntime"].reason
    assert records["openvino"].status == "ok", records["openvino"].reason


@pytest.mark.slow
def test_bad_options_are_one_line_errors():
    from edgefer.errors import InputError

    with pytest.raises(InputError, match="precision"):
        BenchRequest(precisions=("fp64",))
    result = cli("bench", "--backends", "cuda-magic")
    assert isinstance(result.exception, InputError) and "unknown backend" in str(result.exception)


# ---------------------------------------------------------------- accuracy column


@pytest.mark.slow
def test_accuracy_matches_a_direct_recognizer(tmp_path, astronaut_path, astronaut_bgr):
    import cv2

    from edgefer import Recognizer

    data = tmp_path / "faces"
    images = {"happy": astronaut_path, "neutral": astronaut_path, "surprise": None}
    for label, image in images.items():
        (data / label).mkdir(parents=True)
        target = data / label / "face.png"
        if image is None:  # a ready crop: the whole image is the face
            cv2.imwrite(str(target), cv2.resize(astronaut_bgr[30:230, 150:330], (84, 84)))
        else:
            shutil.copy(image, target)
    work = tmp_path / "work"
    request = BenchRequest(models=("microexpnet-ck",), backends="onnxruntime", batches=(1,), plan=QUICK,
                           work=work, data=data)
    result = run_bench(request)
    (record,) = result.records
    assert record.status == "ok" and record.accuracy_samples == 3 and 0.0 <= record.accuracy <= 1.0
    assert "onnxruntime top-1" in Report.of([result]).latency.headers  # shown beside the speed

    recognizer = Recognizer(work / "microexpnet-ck" / record.artifact, threads=1, detector="haar-exact")
    hits = 0
    for label in images:
        path = data / label / "face.png"
        faces = recognizer.predict(path) or recognizer.predict(path, detect=False)
        hits += faces[0].label == label
    assert record.accuracy == pytest.approx(hits / 3)
    assert set(images) <= set(LABELS)
