"""The edgefer command line. Each command imports its heavy stage only when it runs.

Exit codes (edgefer.errors): 0 success, 1 internal error, 2 bad input or usage (missing/broken files,
unknown names), 3 refused as unsafe, 4 a quality gate failed (parity, benchmark validity), 5 backend or
environment unavailable, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli_bench import bench, report
from edgefer.cli_study import study_app
from edgefer.cli_train import train_app
from edgefer.errors import BackendUnavailable, EdgeferError, InputError, QualityError

app = typer.Typer(
    name="edgefer", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Facial-expression recognition on edge devices: predict, convert, bench, train.")

EXIT_BAD_INPUT = 2


@contextlib.contextmanager
def needs_extra(extra: str, command: str) -> Iterator[None]:
    """Turn a missing optional dependency into a one-line BackendUnavailable naming the extra."""
    try:
        yield
    except ModuleNotFoundError as err:
        raise BackendUnavailable(f"{command} needs {err.name}, which is not installed: "
                                 f"pip install 'edgefer[{extra}]'") from None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C libraries print straight to file descriptor 2 (libpng's "libpng error: ...") to
    /dev/null meanwhile: edgefer's own one-line error says what went wrong."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"edgefer: error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


@app.command()
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


@app.command()
def convert(
    model: Annotated[str, typer.Argument(help="Bundled name (microexpnet-ck), family name (p12-s, teacher; "
                                              "random weights) or a .safetensors training checkpoint.")],
    to: Annotated[str, typer.Option("--to", help="Formats, comma-separated: onnx, openvino, tensorrt.")] = "onnx",
    precision: Annotated[str, typer.Option(help="fp32, fp16 or int8.")] = "fp32",
    calib: Annotated[Path | None, typer.Option(help="Folder of face images for INT8 calibration and the "
                                                    "parity check (default: built-in face crops).")] = None,
    batch: Annotated[str, typer.Option(help="Batch size N, or 'dynamic'.")] = "dynamic",
    max_batch: Annotated[int, typer.Option(min=1, help="Largest batch of a dynamic TensorRT profile.")] = 256,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("models"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Export a model; every artifact is checked against PyTorch before it is written."""
    with needs_extra("train", "edgefer convert"):
        from edgefer.convert.pipeline import ConvertRequest, parse_formats
        from edgefer.convert.pipeline import convert as run_convert

    request = ConvertRequest(model=model, formats=parse_formats(to), precision=precision.lower(), out=out,
                             calib=calib, batch=_parse_batch(batch), max_batch=max_batch)
    artifacts = run_convert(request, progress=lambda line: typer.echo(line, err=True))
    if as_json:
        typer.echo(json.dumps([a.to_dict() for a in artifacts], indent=2))
    else:
        _print_artifacts(artifacts)
    failed = [a for a in artifacts if a.status != "written"]
    if failed:
        raise fail("; ".join(f"{a.format} {a.precision} not written: {a.reason}" for a in failed),
                   QualityError.exit_code)


def _parse_batch(text: str) -> int | None:
    if text.lower() == "dynamic":
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"--batch {text!r}: expected a positive integer or 'dynamic'")
    return int(text)


def _print_artifacts(artifacts: list) -> None:
    typer.echo(f"{'file':<40}{'size':>10}  {'runs as':<14}{'max |dp|':>10}{'top-1':>8}  status")
    for a in artifacts:
        p = a.parity
        diff = f"{p.max_abs_diff:.1e}" if p else "-"
        top1 = f"{p.top1_agreement:.1%}" if p else "-"
        size = f"{a.size_bytes / 1e6:.3f} MB" if a.size_bytes else "-"
        typer.echo(f"{str(a.path):<40}{size:>10}  {a.runtime_precision or '-':<14}{diff:>10}{top1:>8}  {a.status}")


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List every model edgefer can build or ships: the family, the teacher, the pretrained ones."""
    from edgefer.train.registry import list_models

    entries = list_models()
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    names = [e.name + (f" ({', '.join(e.aliases)})" if e.aliases else "") for e in entries]
    width = max(map(len, names)) + 2
    typer.echo(f"{'name':<{width}}{'kind':<12}{'variant':<14}{'size':<6}{'params':>12}  description")
    for name, e in zip(names, entries, strict=True):
        typer.echo(f"{name:<{width}}{e.kind:<12}{e.variant:<14}{e.size:<6}{e.params:>12,}  {e.description}")


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Versions, available backends and devices on this machine."""
    from edgefer.sysinfo import detect

    system = detect()
    if as_json:
        typer.echo(json.dumps(system.to_dict(), indent=2))
        return
    typer.echo(f"edgefer {system.libraries['edgefer']}  python {system.python}  {system.platform}")
    typer.echo(f"cpu: {system.cpu} ({system.cores} cores)")
    typer.echo(f"gpus: {', '.join(system.gpus) or 'none'}")
    for b in system.backends:
        detail = ", ".join(b.devices) if b.available else f"unavailable: {b.reason}"
        typer.echo(f"  {b.name:<12} {b.version or '-':<12} {detail}")


app.command()(bench)
app.command()(report)
app.add_typer(train_app, name="train")
app.add_typer(study_app, name="study")


def main() -> None:
    """Entry point: edgefer's errors become one line and exit code 2; EDGEFER_DEBUG=1 shows tracebacks.

    Typer handles its own usage errors (exit 2) and typer.Exit; everything else arrives here.
    """
    debug = bool(os.environ.get("EDGEFER_DEBUG"))
    try:
        app()
    except EdgeferError as err:
        if debug:
            raise
        sys.exit(fail(str(err), err.exit_code).exit_code)
    except KeyboardInterrupt:
        typer.echo("edgefer: interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if debug:
            raise
        sys.exit(fail(f"internal error: {type(err).__name__}: {err} (EDGEFER_DEBUG=1 shows the traceback)",
                      1).exit_code)


if __name__ == "__main__":
    main()
