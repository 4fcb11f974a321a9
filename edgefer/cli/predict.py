"""`edgefer predict`: the expressions of every face in images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli.common import native_stderr_silenced


def predict(
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE...", help="Image files (PNG, JPEG, BMP, TIFF, WebP).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Bundled name or model file.")] = "microexpnet-ck",
    backend: Annotated[str | None, typer.Option(help="onnxruntime, openvino or tensorrt "
                                                     "(default: by file type).")] = None,
    device: Annotated[str | None, typer.Option(help="Backend device, e.g. cpu, cuda, GPU.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads.")] = None,
    no_detect: Annotated[bool, typer.Option("--no-detect", help="Treat each image as an aligned face crop.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Recognise the facial expression of every face in the images, left to right in each.

    A missing, truncated, corrupt or oversized image (over $EDGEFER_MAX_IMAGE_PIXELS, default
    89,478,485 pixels) stops the run with exit code 2 and one line naming the file.
    """
    from edgefer.imagefile import read_image
    from edgefer.runtime import Recognizer

    recognizer = Recognizer(model, backend=backend, threads=threads, device=device)
    results = []
    for image in images:
        with native_stderr_silenced():
            frame = read_image(image)
        faces = recognizer.predict(frame, detect=not no_detect)
        results.append({"image": str(image), "faces": [face.to_dict() for face in faces]})
        if not as_json:
            _print_faces(str(image), faces)
    if as_json:
        typer.echo(json.dumps(results, indent=2))


def _print_faces(image: str, faces: list) -> None:
    if not faces:
        typer.echo(f"{image}: no face found")
    for index, face in enumerate(faces):
        box = "whole image" if face.box is None else "x={} y={} w={} h={}".format(*face.box)
        top = sorted(face.scores.items(), key=lambda kv: -kv[1])[:3]
        scores = "  ".join(f"{label} {p:.3f}" for label, p in top)
        typer.echo(f"{image}  face {index}  [{box}]  {face.label:<9} {scores}")
