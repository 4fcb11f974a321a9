"""Streams on real video files written with OpenCV from frames composed of the astronaut photo:
face ids checked frame by frame, boxes by IoU against where the face was pasted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from composed_frames import face_box, frame, iou, write_video  # noqa: E402

from edgefer import Recognizer  # noqa: E402
from edgefer.errors import InputError, InvalidFrameError  # noqa: E402
from edgefer.video import open_video  # noqa: E402


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer("microexpnet-ck", threads=1)


def decoded(path: Path) -> list[np.ndarray]:
    with open_video(path) as video:
        return list(video)


def moving(count: int = 40, step: int = 4) -> list[tuple[int, int, float]]:
    return [(60 + step * i, 90, 1.0) for i in range(count)]


def test_a_moving_face_keeps_its_id_and_its_box(recognizer, tmp_path):
    places = moving()
    video = write_video(tmp_path / "moving.mp4", [frame(faces=[p]) for p in places])
    results = list(recognizer.stream(decoded(video), detect_every=5, fps=30))
    assert [r.index for r in results] == list(range(len(places)))
    assert [r.detected for r in results] == [i % 5 == 0 for i in range(len(places))]
    assert [r.time for r in results] == pytest.approx([i / 30 for i in range(len(places))])
    ids = set()
    for result, place in zip(results, places, strict=True):
        (face,) = result.faces
        ids.add(face.id)
        assert iou(face.box, face_box(*place)) >= 0.6, (result.index, face.box, face_box(*place))
    assert ids == {1}


def test_two_faces_keep_two_ids(recognizer, tmp_path):
    places = [((20 + 3 * i, 100, 1.0), (380 - 3 * i, 130, 1.05)) for i in range(30)]
    video = write_video(tmp_path / "two.avi", [frame(faces=p) for p in places], fourcc="MJPG")
    results = list(recognizer.stream(decoded(video), detect_every=4))
    first = {f.id: f.box for f in results[0].faces}
    assert len(first) == 2
    for result, pair in zip(results, places, strict=True):
        assert len(result.faces) == 2
        for face in result.faces:  # each id stays on its own face: the one it started on
            start = 0 if first[face.id][0] < 200 else 1
            assert iou(face.box, face_box(*pair[start])) >= 0.6, (result.index, face)


def test_a_face_that_leaves_and_comes_back(recognizer, tmp_path):
    """Absent for 30 frames (6 detections): no face meanwhile; on return a new id, stable again."""
    frames = [frame(faces=[(200, 90, 1.0)])] * 12 + [frame(faces=())] * 30 + [frame(faces=[(240, 100, 1.0)])] * 15
    video = write_video(tmp_path / "leaves.mp4", frames)
    results = list(recognizer.stream(decoded(video), detect_every=5))
    ids = [[f.id for f in r.faces] for r in results]
    assert ids[:10] == [[1]] * 10  # the detection at frame 10 sees the face; at 15 it is gone
    assert all(i == [] for i in ids[15:45])
    assert all(i == [2] for i in ids[45:]), ids[40:]
    assert all(iou(r.faces[0].box, face_box(240, 100)) >= 0.7 for r in results[45:])


def test_a_scaled_face_is_followed(recognizer, tmp_path):
    scales = np.linspace(1.0, 1.6, 30)  # the face from 95 to 152 px: within BlazeFace short range's sizes
    frames = [frame(faces=[(150, 20, float(s))]) for s in scales]
    results = list(recognizer.stream(frames, detect_every=3))
    assert {f.id for r in results for f in r.faces} == {1}
    assert all(iou(r.faces[0].box, face_box(150, 20, float(s))) >= 0.6 for r, s in zip(results, scales, strict=True))


def test_no_face_video_gives_empty_frames(recognizer, tmp_path):
    video = write_video(tmp_path / "empty.mp4", [frame(faces=())] * 12)
    results = list(recognizer.stream(decoded(video)))
    assert len(results) == 12 and all(r.faces == [] for r in results)


def test_detect_every_frame_matches_predict(tmp_path):
    recognizer = Recognizer("microexpnet-ck", threads=1, detector="haar-exact")
    frames = [frame(faces=[p]) for p in moving(8, 6)]
    results = list(recognizer.stream(frames, detect_every=1))
    for result, image in zip(results, frames, strict=True):
        expected = recognizer.predict(image)
        assert [(f.box, f.label) for f in result.faces] == [(f.box, f.label) for f in expected]
        assert result.faces[0].scores == pytest.approx(expected[0].scores, abs=1e-6)


def test_a_bad_frame_raises_for_itself_and_the_stream_goes_on(recognizer):
    frames = [frame(faces=[p]) for p in moving(12)]
    frames[6] = None
    frames[8] = np.zeros((10, 10, 2), np.uint8)
    stream = recognizer.stream(frames, detect_every=5)
    seen = []
    while True:
        try:
            seen.append(next(stream))
        except (InvalidFrameError, InputError) as err:
            seen.append(err)
        except StopIteration:
            break
    assert isinstance(seen[6], InvalidFrameError) and isinstance(seen[8], InvalidFrameError)
    good = [r for r in seen if not isinstance(r, Exception)]
    assert [r.index for r in good] == [0, 1, 2, 3, 4, 5, 7, 9, 10, 11]
    assert all(len(r.faces) == 1 and r.faces[0].id == 1 for r in good)
    assert [r.detected for r in good] == [True, False, False, False, False, True, False, False, True, False]


def test_frames_pushed_one_by_one(recognizer):
    stream = recognizer.stream([], detect_every=2, fps=10)
    results = [stream.process(frame(faces=[p])) for p in moving(5)]
    assert [r.faces[0].id for r in results] == [1] * 5 and results[-1].time == pytest.approx(0.4)
    assert [r.detected for r in results] == [True, False, True, False, True]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_detect_every_must_be_a_positive_whole_number(recognizer, bad):
    with pytest.raises(InputError, match="detect_every"):
        recognizer.stream([], detect_every=bad)


def test_face_ids_are_in_the_dicts(recognizer):
    result = recognizer.stream([frame()]).process(frame())
    data = result.to_dict()
    assert data["frame"] == 0 and data["faces"][0]["id"] == 1 and len(data["faces"][0]["scores"]) == 8
    assert "id" not in recognizer.predict(frame())[0].to_dict()
