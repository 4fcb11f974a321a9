"""`edgefer predict VIDEO` / `--camera INDEX`: per-frame results, CSV, annotated video, progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from edgefer.cli.common import ProgressBars
from edgefer.detect import detector_name
from edgefer.errors import InputError
from edgefer.textsafe import json_text, printable


def predict_streams(recognizer, model: str, videos: list[Path], camera: int | None, *, detect_every: int,
                    as_json: bool, csv_path: Path | None, annotate: Path | None) -> None:
    """Each video (or the camera) in turn; a video that broke mid-way is reported after its outputs are closed."""
    from edgefer.stream_outputs import writable_target
    from edgefer.video import open_camera, open_video

    for target, what in ((csv_path, "--csv"), (annotate, "--annotate")):
        if target is not None:
            writable_target(target, what)
    broken = []
    for source in ([camera] if camera is not None else videos):
        video = open_camera(source) if camera is not None else open_video(source)
        try:
            with video:
                _one(recognizer, model, video, detect_every, as_json, csv_path, annotate)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the outputs are closed already; main() says "interrupted"
            typer.echo(f"edgefer: {printable(video.name)} stopped after {video.frames_read} frames; "
                       "the outputs hold every frame done", err=True)
            raise
        if video.broken:
            broken.append(video.broken)
    if broken:
        raise InputError("; ".join(broken))


def _one(recognizer, model: str, video, detect_every: int, as_json: bool, csv_path: Path | None,
         annotate: Path | None) -> None:
    from edgefer.stream_outputs import AnnotatedVideo, CsvLog, StreamSummary, run_stream

    about = {"source": video.name, "model": model, "detector": detector_name(recognizer.stream_detector)}
    summary = StreamSummary(video.name)
    csv_log = CsvLog(csv_path, recognizer.labels) if csv_path else None
    try:
        annotated = AnnotatedVideo(annotate, video.fps, video.size) if annotate else None
    except InputError:
        if csv_log is not None:
            csv_log.close()
        raise
    stream = recognizer.stream([], detect_every=detect_every, fps=None if video.camera else video.fps or None)
    with _Progress(video) as progress:
        def on_frame(result, fps: float) -> None:
            summary.add(result)
            progress.advance(fps)
            if as_json:
                typer.echo(json_text({**about, **result.to_dict()}))

        try:
            run_stream(video, stream, csv_log=csv_log, annotated=annotated, on_frame=on_frame)
        finally:
            if not as_json:
                for line in summary.lines():
                    typer.echo(printable(line))  # labels come from the model's files


class _Progress:
    """A progress bar with frames/s on stderr, for video files when stderr is a terminal."""

    def __init__(self, video):
        self._bars = self._bar = None
        if not video.camera and sys.stderr.isatty():
            self._bars = ProgressBars(rate="frames/s", transient=True)
            self._name, self._total = Path(video.name).name, video.frame_count or None

    def __enter__(self) -> _Progress:
        if self._bars is not None:
            self._bar = self._bars.__enter__().bar(self._name, total=self._total)
        return self

    def advance(self, fps: float) -> None:
        if self._bar is not None:
            self._bar.advance(rate=fps)

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.__exit__(*exc)
