"""`edgefer bench --frames`: whole frames timed end to end with real detectors, real models, real records."""

from __future__ import annotations

import csv
import json

import pytest
from bench_cli import cli

from edgefer.bench.catalog import BY_NAME, Availability
from edgefer.bench.frames import bench_frames, composed_frame, frame_cells, parse_frames
from edgefer.bench.harness import TimingPlan
from edgefer.bench.records import read_result
from edgefer.bench.report import Report
from edgefer.detect import make_detector
from edgefer.errors import InputError

QUICK = TimingPlan(warmup_iters=3, warmup_seconds=0.02, min_iters=20, min_seconds=0.1, max_seconds=1.0)


def test_frame_sizes_parse_and_refuse():
    assert parse_frames("640x480, 1920X1080,640x480") == ((640, 480), (1920, 1080))
    for bad in ("640", "640x", "x480", "0x0", "640x480x3", "99999x10", ""):
        with pytest.raises(InputError, match="--frames"):
            parse_frames(bad)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (1920, 1080)])
@pytest.mark.parametrize("detector", ["blazeface", "haar"])
def test_the_bench_frame_holds_one_face_every_detector_finds(size, detector):
    (box,) = make_detector(detector).detect(composed_frame(*size))
    assert 0.25 * size[1] <= box[3] <= 0.45 * size[1]  # the face is about 35% of the frame's height


def test_a_frame_cell_records_stages_share_fps_and_the_stream():
    cells = frame_cells(((640, 480),), ("blazeface",), [BY_NAME["onnxruntime"], BY_NAME["torch"]], (1,))
    assert len(cells) == 1  # torch runs no frames
    found = {"onnxruntime": Availability(BY_NAME["onnxruntime"], True)}
    steps = []
    (record,) = bench_frames(cells, found, QUICK, steps.append)
    assert steps == ["frames 640x480 blazeface onnxruntime 1T"]
    assert record.status in ("ok", "invalid") and record.measured, record.reason
    assert (record.model, record.frame, record.detector, record.threads) == ("microexpnet-ck", "640x480",
                                                                             "blazeface", 1)
    assert set(record.stages_ms) == {"detect", "crop", "classify"} and min(record.stages_ms.values()) > 0
    assert record.detection_share == pytest.approx(record.stages_ms["detect"] / sum(record.stages_ms.values()))
    assert record.fps == pytest.approx(1e3 / record.timing.median)
    assert record.stream_fps > 0 and record.stream_ids == 1  # one face, one id across the clip
    data = record.to_dict()
    assert data["fps"] == record.fps and data["stages_ms"] == record.stages_ms


def test_an_unavailable_backend_gives_a_record_with_its_reason():
    cells = frame_cells(((640, 480),), ("haar",), [BY_NAME["openvino"]], (1,))
    found = {"openvino": Availability(BY_NAME["openvino"], False, "openvino unavailable: not installed")}
    (record,) = bench_frames(cells, found, QUICK, lambda what: None)
    assert record.status == "unavailable" and record.reason.startswith("openvino unavailable")


@pytest.mark.slow
def test_bench_frames_cli_records_tables_and_report(tmp_path):
    out = tmp_path / "run.json"
    result = cli("bench", "--models", "microexpnet", "--backends", "onnxruntime", "--batch", "1", "--frames",
                 "640x480,1280x720", "--detectors", "blazeface,haar", "--duration", "0.1", "--min-iters", "100",
                 "--json", out, "--work", tmp_path / "work", "--machine", "box-a")
    assert result.exit_code in (0, 4), result.output  # 4: a cell too slow for its minimums on a busy machine
    assert "Whole frames, end to end" in result.output and "end-to-end 640x480 blazeface ms" in result.output
    records = json.loads(out.read_text())["records"]
    frames = [r for r in records if r["frame"]]
    assert [(r["frame"], r["detector"]) for r in frames] == [("640x480", "blazeface"), ("640x480", "haar"),
                                                             ("1280x720", "blazeface"), ("1280x720", "haar")]
    assert all(r["fps"] > 0 and r["stream_ids"] == 1 and 0 < r["detection_share"] < 1 for r in frames)
    assert json.loads(out.read_text())["options"]["frames"] == ["640x480", "1280x720"]
    second = tmp_path / "second.json"
    data = json.loads(out.read_text())
    data["machine"]["name"] = "box-b"
    second.write_text(json.dumps(data))
    merged = cli("report", out, second, "--out", tmp_path / "report", "--no-plot")
    assert merged.exit_code == 0, merged.output
    with open(tmp_path / "report" / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["machine"] for r in rows] == ["box-a"] * 4 + ["box-b"] * 4
    with open(tmp_path / "report" / "latency.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["box-b end-to-end 640x480 blazeface ms"]) > float(row["box-b onnxruntime ms"])


@pytest.mark.slow
def test_frames_only_run_needs_no_models(tmp_path):
    out = tmp_path / "frames.json"
    result = cli("bench", "--frames", "640x480", "--detectors", "blazeface", "--backends", "onnxruntime",
                 "--duration", "0.05", "--min-iters", "100", "--json", out)
    assert result.exit_code in (0, 4), result.output
    loaded = read_result(out)
    assert [r.frame for r in loaded.records] == ["640x480"] and loaded.records[0].stream_fps > 0
    tables = Report.of([loaded]).tables
    # frame records have their own table; the model tables (and Backends, which counts model cells) stay empty
    assert [t.title for t in tables] == ["Machines", "Whole frames, end to end (decode excluded)"]


def test_unknown_detector_is_refused():
    result = cli("bench", "--frames", "640x480", "--detectors", "yolo")
    assert isinstance(result.exception, InputError) and str(result.exception).startswith("--detectors yolo")
    assert result.exception.exit_code == 2
