"""`edgefer predict` on videos, cameras and folders as a user runs it: real processes and real files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from composed_frames import face_box, frame, iou, write_video  # noqa: E402

from edgefer import LABELS  # noqa: E402

pytestmark = pytest.mark.slow

FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    places = [(60 + 6 * i, 90, 1.0) for i in range(FRAMES)]
    return write_video(tmp_path_factory.mktemp("clip") / "moving face.mp4", [frame(faces=[p]) for p in places])


def frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    return count


def test_video_json_lines_csv_and_annotated_video(edgefer, clip, tmp_path):
    table, annotated = tmp_path / "faces.csv", tmp_path / "annotated.mp4"
    out = edgefer("predict", clip, "--json", "--detect-every", "4", "--csv", table, "--annotate", annotated)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert all(line["source"] == str(clip) and line["detector"] == "blazeface" for line in lines)
    assert [line["detected"] for line in lines] == [i % 4 == 0 for i in range(FRAMES)]
    for line in lines:
        (face,) = line["faces"]
        assert face["id"] == 1 and iou(face["box"], face_box(60 + 6 * line["frame"], 90)) >= 0.6
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["frame", "time", "face_id", "x", "y", "w", "h", "label", *LABELS]
    assert [int(r["frame"]) for r in rows] == list(range(FRAMES))
    assert [r["label"] for r in rows] == [line["faces"][0]["label"] for line in lines]
    assert frame_count(annotated) == FRAMES
    assert not list(tmp_path.glob(".*partial*"))


def test_video_summary_without_json(edgefer, clip):
    out = edgefer("predict", clip, "--detector", "haar")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{clip}: {FRAMES} frames") and "face #1" in out.stdout


def test_a_truncated_video_keeps_what_was_read(edgefer, tmp_path):
    avi = write_video(tmp_path / "clip.avi", [frame(faces=[(60 + 6 * i, 90, 1.0)]) for i in range(FRAMES)],
                      fourcc="MJPG")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(avi.read_bytes()[:avi.stat().st_size // 2])
    table, annotated = tmp_path / "broken.csv", tmp_path / "broken.mp4"
    out = edgefer("predict", broken, "--csv", table, "--annotate", annotated)
    assert out.returncode == 2
    (message,) = out.stderr.strip().splitlines()
    read = frame_count(annotated)
    assert 0 < read < FRAMES and message == (f"edgefer: error: {broken}: video ended after {read} of {FRAMES} "
                                             "frames (truncated or corrupt); the frames read were processed")
    assert len(table.read_text().strip().splitlines()) == read + 1


@pytest.mark.parametrize("content", [b"", b"\x00" * 4096, None], ids=["empty", "zeros", "garbage-codec"])
def test_unreadable_videos_exit_2_with_one_line(edgefer, tmp_path, clip, content):
    bad = tmp_path / "bad.avi"
    if content is None:  # a real AVI whose codec no decoder knows
        avi = write_video(tmp_path / "ok.avi", [frame()] * 3, fourcc="MJPG")
        content = avi.read_bytes().replace(b"MJPG", b"QQQQ")
    bad.write_bytes(content)
    out = edgefer("predict", bad, "--json")
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"edgefer: error: {bad}: ") and "Traceback" not in out.stderr


def test_missing_camera_exits_5(edgefer):
    out = edgefer("predict", "--camera", "63")
    assert out.returncode == 5
    assert out.stderr.strip().splitlines() == ["edgefer: error: camera 63 cannot be opened (no such device, busy, "
                                               "or no permission)"]


@pytest.mark.parametrize("option", ["--annotate", "--csv"])
def test_outputs_that_cannot_be_written(edgefer, clip, tmp_path, option):
    missing = tmp_path / "no such folder" / "out.mp4"
    out = edgefer("predict", clip, option, missing)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"edgefer: error: {option} {missing}: folder {missing.parent} "
                                               "does not exist"]
    unwritable = Path("/proc/edgefer-out.mp4")  # no one, root included, creates files there
    out = edgefer("predict", clip, option, unwritable)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"edgefer: error: {option} {unwritable}")


def test_mixing_images_and_videos_is_refused(edgefer, clip, astronaut_path):
    out = edgefer("predict", clip, astronaut_path)
    assert out.returncode == 2 and "separate calls" in out.stderr


def test_a_folder_of_images(edgefer, tmp_path, astronaut_path):
    (tmp_path / "photos" / "more").mkdir(parents=True)
    shutil.copy(astronaut_path, tmp_path / "photos" / "b.png")
    cv2.imwrite(str(tmp_path / "photos" / "a.jpg"), frame())
    cv2.imwrite(str(tmp_path / "photos" / "more" / "c.png"), frame(faces=()))
    flat = json.loads(edgefer("predict", "--json", tmp_path / "photos").stdout)
    assert [r["image"] for r in flat] == [str(tmp_path / "photos" / n) for n in ("a.jpg", "b.png")]
    deep = json.loads(edgefer("predict", "--json", "--recursive", tmp_path / "photos").stdout)
    assert [r["image"] for r in deep][-1] == str(tmp_path / "photos" / "more" / "c.png")
    assert deep[-1]["faces"] == [] and len(deep[0]["faces"]) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGINT")
def test_ctrl_c_leaves_a_complete_csv_and_a_playable_video(tmp_path):
    long = write_video(tmp_path / "long.mp4", [frame(faces=[(60 + (i % 60) * 5, 90, 1.0)]) for i in range(900)])
    table, annotated = tmp_path / "run.csv", tmp_path / "run.mp4"
    process = subprocess.Popen([sys.executable, "-m", "edgefer", "predict", str(long), "--json", "--detector",
                                "haar-exact", "--detect-every", "1", "--csv", str(table), "--annotate",
                                str(annotated)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = [process.stdout.readline() for _ in range(5)]
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    done = len(seen) + len(rest.splitlines())
    assert 5 <= done < 900 and errors.strip().splitlines()[-1] == "edgefer: interrupted"
    assert errors.strip().splitlines()[-2].startswith(f"edgefer: {long} stopped after")
    rows = table.read_text().strip().splitlines()
    assert len(rows) - 1 >= 5 and rows[-1].count(",") == rows[0].count(",")
    assert frame_count(annotated) == len(rows) - 1
    assert not list(tmp_path.glob(".*partial*"))
