"""`edgefer predict`: the expressions of every face in images, folders, videos and cameras."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli.common import EXIT_BAD_INPUT, error
from edgefer.errors import InputError, ModelError
from edgefer.limits import check_options
from edgefer.nativelog import native_stderr_silenced
from edgefer.textsafe import json_text, printable

#: What ``--json`` and the table call the ways of taking faces without a detector.
NOT_DETECTED = {"no-detect": "none (whole image as the face box)", "crop": "none (ready crops, resized only)"}


def predict(
    inputs: Annotated[list[Path] | None, typer.Argument(
        metavar="INPUT...", help="Image files (PNG, JPEG, BMP, TIFF, WebP), folders of images, or video files "
                                 "(mp4, avi, mkv, mov, webm).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Bundled name or model file.")] = "microexpnet-ck",
    backend: Annotated[str | None, typer.Option(help="onnxruntime, openvino or tensorrt "
                                                     "(default: by file type).")] = None,
    device: Annotated[str | None, typer.Option(help="Backend device, e.g. cpu, cuda, GPU.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads.")] = None,
    precision: Annotated[str | None, typer.Option(help="Compute precision to ask the backend for: fp32, fp16, "
                                                       "bf16 (OpenVINO on a CPU with bf16) or int8; exit 5 when "
                                                       "it cannot run it (default: the model's own).")] = None,
    no_detect: Annotated[bool, typer.Option("--no-detect", help="Take each whole image as a detector's face box "
                                                                "(the authors' crop is applied).")] = False,
    crop: Annotated[bool, typer.Option("--crop", help="Each image is a model-ready face crop (e.g. 84x84 gray): "
                                                      "resized to the model's input only, nothing cut.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Images: one JSON array, one object per image. Videos "
                                                         "and cameras: JSON lines, one object per frame.")] = False,
    detector: Annotated[str | None, typer.Option(help="Face detector: haar-exact (the paper's; default for "
                                                      "images), blazeface (default for videos and cameras), "
                                                      "blazeface-full, haar.", show_default=False)] = None,
    min_face: Annotated[float | None, typer.Option(metavar="FRACTION", help="--detector haar: smallest face "
                                                   "searched, as a fraction of the frame's shorter side (default "
                                                   "0.15; 0 searches every size, as haar-exact).",
                                                   show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Folders: take the images in their "
                                                                      "sub-folders too.")] = False,
    camera: Annotated[int | None, typer.Option(metavar="INDEX", min=0, help="Read camera INDEX (0: the first) "
                                                                            "until Ctrl-C.")] = None,
    detect_every: Annotated[int, typer.Option(min=1, help="Videos and cameras: run the detector every N frames; "
                                                          "faces are tracked in between.")] = 5,
    csv_path: Annotated[Path | None, typer.Option("--csv", metavar="FILE", help="Videos and cameras: write frame, "
                                                  "time, face id, box, label and the scores per face here.")] = None,
    annotate: Annotated[Path | None, typer.Option(metavar="OUT.mp4", help="Videos and cameras: write the video "
                                                  "with boxes, ids, labels and the frame rate drawn on it.")] = None,
) -> None:
    """Recognise the facial expression of every face in images, videos or a camera.

    Images (and the images of folders, sorted) are answered left to right in each. Every image is
    processed: a missing, truncated, corrupt or oversized one (over $EDGEFER_MAX_IMAGE_PIXELS,
    default 89,478,485 pixels) gets one line on stderr (and an "error" entry with --json), and the
    command exits with code 2 at the end. Videos and cameras give per-frame results with face ids
    stable across frames; Ctrl-C stops them with the CSV and the annotated video complete. A missing
    camera exits with 5.
    """
    from edgefer.detect import make_detector
    from edgefer.inputs import expand_inputs, split_videos
    from edgefer.runtime import Recognizer

    check_options({"camera": camera, "detect_every": detect_every})
    if crop and no_detect:
        raise InputError("--crop and --no-detect exclude each other: --crop takes ready crops, "
                         "--no-detect whole images as face boxes")
    images, videos = split_videos(expand_inputs(inputs or [], recursive))
    streams = videos or camera is not None
    _check_combination(images, videos, camera, crop or no_detect, csv_path, annotate)
    mode = "crop" if crop else "no-detect" if no_detect else "detect"
    if min_face is not None:
        detector = make_detector(detector, threads=threads, min_face=min_face)
    recognizer = Recognizer(model, backend=backend, threads=threads, device=device, detector=detector,
                            precision=precision.lower() if precision else None)
    if streams:
        from edgefer.cli.predict_stream import predict_streams

        predict_streams(recognizer, model, videos, camera, detect_every=detect_every, as_json=as_json,
                        csv_path=csv_path, annotate=annotate)
        return
    finder = NOT_DETECTED.get(mode, recognizer.detector_name)
    about = {"model": model, "backend": recognizer.backend.name, "precision": recognizer.backend.precision,
             "detector": finder}
    header = f"# model {model} on {recognizer.backend.name} ({recognizer.backend.device}), faces: {finder}"
    results, failed = [], 0
    for image in images:
        try:
            faces = _faces(recognizer, image, mode)
        except (InputError, ModelError) as err:
            failed += 1
            message = printable(" ".join(str(err).split()))
            error(str(err))
            results.append({"image": str(image), **about, "error": message})
            continue
        results.append({"image": str(image), **about, "faces": [face.to_dict() for face in faces]})
        if not as_json:
            if header:
                typer.echo(printable(header))
                header = ""
            _print_faces(str(image), faces, mode)
    if as_json:
        typer.echo(json_array(results))
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def _check_combination(images: list, videos: list, camera: int | None, no_detector: bool,
                       csv_path: Path | None, annotate: Path | None) -> None:
    """Refuse what cannot be combined, before any model is loaded."""
    if not images and not videos and camera is None:
        raise InputError("nothing to read: give image files, folders or videos, or --camera INDEX")
    if (videos or camera is not None) and images:
        raise InputError("images and videos/cameras go in separate calls (their --json differs: "
                         "an array for images, JSON lines for streams)")
    if videos and camera is not None:
        raise InputError("--camera and video files go in separate calls")
    if (videos or camera is not None) and no_detector:
        raise InputError("--crop and --no-detect apply to images, not to videos or cameras")
    if (csv_path or annotate) and not (videos or camera is not None):
        raise InputError("--csv and --annotate apply to a video or --camera")
    if (csv_path or annotate) and len(videos) > 1:
        raise InputError("--csv and --annotate take one video at a time")


def json_array(items: list[dict]) -> str:
    """A JSON array with one item per line: valid JSON, and still readable line by line."""
    return "[" + ",\n ".join(json_text(item) for item in items) + "]"


def _faces(recognizer, image: Path, mode: str) -> list:
    from edgefer.imagefile import read_image

    with native_stderr_silenced():
        frame = read_image(image, recognizer.max_pixels)
    if mode == "crop":
        return [recognizer.classify_crop(frame)]
    return recognizer.predict(frame, detect=mode == "detect")


def _print_faces(image: str, faces: list, mode: str) -> None:
    """One line per face; the file name and the labels (from the model's files) printable (textsafe)."""
    image = printable(image)
    if not faces:
        typer.echo(f"{image}: no face found")
    for index, face in enumerate(faces):
        whole = "ready crop" if mode == "crop" else "whole image"
        box = whole if face.box is None else "x={} y={} w={} h={}".format(*face.box)
        top = sorted(face.scores.items(), key=lambda kv: -kv[1])[:3]
        scores = "  ".join(f"{printable(label)} {p:.3f}" for label, p in top)
        typer.echo(f"{image}  face {index}  [{box}]  {printable(face.label):<9} {scores}")
