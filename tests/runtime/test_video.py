"""Video files and cameras as frame sources: real files written with OpenCV, and broken ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from composed_frames import frame, write_video  # noqa: E402

from edgefer.errors import BackendUnavailable, InputError  # noqa: E402
from edgefer.inputs import expand_inputs, split_videos  # noqa: E402
from edgefer.video import open_camera, open_video  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    frames = [frame(faces=[(60 + 5 * i, 90, 1.0)]) for i in range(20)]
    mp4 = write_video(folder / "clip.mp4", frames, fps=25)
    avi = write_video(folder / "clip.avi", frames, fourcc="MJPG")
    data = avi.read_bytes()
    (folder / "truncated.avi").write_bytes(data[:len(data) // 2])
    (folder / "truncated.mp4").write_bytes(mp4.read_bytes()[:len(mp4.read_bytes()) // 2])
    (folder / "codec.avi").write_bytes(data.replace(b"MJPG", b"QQQQ"))
    (folder / "garbage.mkv").write_bytes(bytes(range(256)) * 40)
    (folder / "empty.webm").write_bytes(b"")
    import cv2

    writer = cv2.VideoWriter(str(folder / "zero.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    writer.release()
    return folder


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi"])
def test_a_video_gives_all_its_frames(videos, name):
    with open_video(videos / name) as video:
        frames = list(video)
        assert video.frame_count == 20 and video.size == (640, 480) and not video.broken
    assert len(frames) == 20 and frames[0].shape == (480, 640, 3)
    assert open_video(videos / "clip.mp4").fps == pytest.approx(25)


def test_a_video_that_breaks_midway_keeps_its_frames_and_says_so(videos):
    video = open_video(videos / "truncated.avi")
    frames = list(video)
    assert 0 < len(frames) < 20
    assert video.broken.startswith(f"{videos / 'truncated.avi'}: video ended after {len(frames)} of 20 frames")


@pytest.mark.parametrize(("name", "expected"), [
    ("truncated.mp4", "not a readable video"), ("codec.avi", "not a readable video"),
    ("garbage.mkv", "not a readable video"), ("empty.webm", "empty file"), ("zero.mp4", "not a readable video"),
    ("missing.mp4", "no such file")])
def test_unreadable_videos_are_one_line_errors(videos, name, expected):
    with pytest.raises(InputError) as err:
        open_video(videos / name)
    assert str(err.value).startswith(f"{videos / name}: {expected}") and "\n" not in str(err.value)


def test_a_missing_camera_is_unavailable():
    with pytest.raises(BackendUnavailable, match="camera 63 cannot be opened"):
        open_camera(63)
    with pytest.raises(InputError, match="camera index"):
        open_camera(-1)


def test_folders_expand_to_their_sorted_images(tmp_path, astronaut_path):
    import shutil

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep").mkdir()
    (tmp_path / ".hidden").mkdir()
    for target in ("z.png", "a.png", "b/c.png", "b/deep/d.jpg", ".hidden/e.png", "notes.txt"):
        shutil.copy(astronaut_path, tmp_path / target)
    assert expand_inputs([tmp_path]) == [tmp_path / "a.png", tmp_path / "z.png"]
    assert expand_inputs([tmp_path], recursive=True) == [tmp_path / "a.png", tmp_path / "b" / "c.png",
                                                         tmp_path / "b" / "deep" / "d.jpg", tmp_path / "z.png"]
    with pytest.raises(InputError, match=r"no image files .* \(--recursive looks"):
        (tmp_path / "text").mkdir()
        (tmp_path / "text" / "notes.txt").write_text("no image here")
        expand_inputs([tmp_path / "text"])
    assert split_videos([Path("a.png"), Path("b.MP4"), Path("c.webm")]) == ([Path("a.png")],
                                                                          [Path("b.MP4"), Path("c.webm")])
