"""Details of the report a reader relies on: what images/s means in each mode, one row per given file on a
machine however many runs timed it, every model named on the size/speed plot, and the backends that refuse
throughput mode saying why before anything is loaded. No GPU and no model file needed."""

from __future__ import annotations

import threading

import pytest

from edgefer.bench import plot
from edgefer.bench.catalog import BY_NAME, CATALOG
from edgefer.bench.harness import Timing, TimingPlan
from edgefer.bench.load import threaded
from edgefer.bench.machine import Machine
from edgefer.bench.records import BenchResult, Parity, Record
from edgefer.bench.runners import GRAPH_IN_FLIGHT, mode_refusal, prepare
from edgefer.bench.table import files_table, throughput_table
from edgefer.errors import InputError

BOX = Machine("box", "Some CPU", cores=4, platform="linux", python="3")


def timing(ms: float) -> Timing:
    return Timing(ms, ms, ms, ms, 0.0, ms, ms, 200, 1.0, 10, 0.2, True)


def record(model: str, batch: int = 1, status: str = "ok", params: int = 65_000, **extra: str) -> Record:
    return Record(model, "onnxruntime", "fp32", batch, 1, status, paper_name=model, params=params, size_mb=0.3,
                  timing=timing(2.0) if status == "ok" else None, extra=dict(extra))


def test_throughput_caption_and_axis_say_what_each_mode_measures(monkeypatch):
    under_load = record("p12-s", mode="throughput", in_flight="4", images_per_second="1234")
    result = BenchResult(BOX, [record("p12-s", batch=8), under_load])
    table = throughput_table([result])
    assert "batch × 1000 ÷ mean milliseconds per call" in table.description
    assert "images completed by all requests ÷ the wall time" in table.description
    assert "in flight × 1000" not in table.description
    assert [v.number for v in table.rows[0][2:]] == [8 * 1e3 / 2.0, 1234.0]

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plot, "_save", lambda plt, figure, path: figures.append(figure) or path)
    try:
        plot.plot_throughput([result], None)
        label = figures[0].axes[-1].get_xlabel()
        assert "batch × 1000 ÷ mean ms per call" in label and "÷ wall time" in label and "in flight" in label
    finally:
        for figure in figures:  # the patched _save does not close it
            plt.close(figure)


def test_given_files_are_one_row_per_machine_file_and_backend():
    file_notes = {"file": "/models/p12-s.fp32.onnx", "network": "p12-s"}  # as a given file's records say

    def run(cpu: str, statuses: dict[int, str]) -> BenchResult:
        records = [record("p12-s.fp32.onnx", batch=b, status=s, **file_notes) for b, s in statuses.items()]
        for r in records:
            r.parity = Parity(1e-6, 1.0, 32, True)
        return BenchResult(Machine("box", cpu, cores=4, platform="linux", python="3"), records)

    runs = [run("Some CPU", {1: "ok"}), run("Some CPU", {1: "ok", 8: "failed"}), run("Another CPU", {1: "ok"})]
    table = files_table(runs)
    assert [[v.text for v in row[:2]] + [row[5].text, row[7].text] for row in table.rows] == [
        ["box (Some CPU)", "/models/p12-s.fp32.onnx", "1 ok, 1 failed", "1.0e-06"],  # two runs: one row
        ["box (Another CPU)", "/models/p12-s.fp32.onnx", "ok", "1.0e-06"]]


def test_models_of_one_parameter_count_are_all_named_on_the_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [("box", record("mine.fp32.onnx")), ("box", record("microexpnet-ck"))]
    names = plot.model_names(records)
    assert names[65_000] == "p12-xxs\nmine.fp32.onnx"  # microexpnet-ck is p12-xxs: named once
    assert list(names) == sorted(names) and len(names) > 1

    figure, axes = plt.subplots()
    try:
        axes.set_xscale("log")
        plot._name_models(axes, records)
        figure.canvas.draw()
        [top] = axes.child_axes
        shown = [t.get_text() for t in top.xaxis.get_ticklabels()]
        assert shown == list(names.values())
    finally:
        plt.close(figure)


def test_only_the_cuda_graph_backend_refuses_throughput_mode():
    assert mode_refusal(BY_NAME["torch-cuda-graph"], "throughput") == GRAPH_IN_FLIGHT
    assert "CUDA graph" in GRAPH_IN_FLIGHT and "in flight" in GRAPH_IN_FLIGHT
    assert mode_refusal(BY_NAME["torch-cuda-graph"], "latency") == ""
    assert all(mode_refusal(b, "throughput") == "" for b in CATALOG if b.name != "torch-cuda-graph")
    with pytest.raises(InputError, match="torch-cuda-graph: throughput mode is not offered"):  # no CUDA needed
        prepare(BY_NAME["torch-cuda-graph"], "microexpnet-ck", "fp32", 1, None, mode="throughput")


def test_a_graph_cell_in_throughput_mode_is_recorded_unsupported_with_the_reason():
    """Where torch-cuda-graph is available, its throughput cells never reach a worker: 'unsupported', why."""
    from edgefer.bench.catalog import Availability
    from edgefer.bench.plan import BenchCell, ModelInfo
    from edgefer.bench.run import _not_runnable

    backend = BY_NAME["torch-cuda-graph"]
    cell = BenchCell(ModelInfo("p12-xxs", "MicroExpNet", 65_000), backend, "fp32", 256, 1)
    here = Availability(backend, True)
    refused = _not_runnable(cell, here, {}, "", mode="throughput")
    assert refused.status == "unsupported" and refused.reason == GRAPH_IN_FLIGHT
    assert _not_runnable(cell, here, {}, "", mode="latency").status == "failed"  # no artifact: a failure


def test_each_request_in_flight_runs_its_own_call_in_its_own_context():
    """What the eager torch-cuda runner relies on: call i (its stream and buffers) only ever runs in thread i,
    inside the context it asked for; images/s is the completed images over the wall time."""
    seen: list[set[threading.Thread]] = [set(), set(), set()]
    entered: list[threading.Thread] = []

    def call_of(i: int):
        return lambda: seen[i].add(threading.current_thread())

    class Context:
        def __enter__(self):
            entered.append(threading.current_thread())

        def __exit__(self, *exc):
            return False

    plan = TimingPlan(warmup_seconds=0.01, min_iters=300, min_seconds=0.05, max_seconds=5.0)
    result = threaded([call_of(i) for i in range(3)], batch=4, plan=plan, context=Context)
    threads = set.union(*seen)
    assert all(seen) and len(threads) == sum(map(len, seen))  # every call ran, no thread ran two calls
    assert all(len(mine) <= 2 for mine in seen)  # a thread of its own in the warm-up and in the timed run
    assert threads <= set(entered) and len(entered) == 6  # each thread entered the context once
    assert result.timing.iterations >= 300
    assert result.images_per_second == pytest.approx(result.timing.iterations * 4 / result.wall_seconds)
