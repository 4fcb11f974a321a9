"""`edgefer convert`: export a model, each artifact gated against PyTorch before it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli.common import fail, needs_extra
from edgefer.errors import InputError, QualityError
from edgefer.textsafe import json_text


def convert(
    model: Annotated[str, typer.Argument(help="Bundled name (microexpnet-ck), family name (p12-s, teacher; "
                                              "random weights) or a .safetensors training checkpoint.")],
    to: Annotated[str, typer.Option("--to", help="Formats, comma-separated: onnx, openvino, tensorrt.")] = "onnx",
    precision: Annotated[str, typer.Option(help="fp32, fp16, int8, or bf16 (OpenVINO only; needs a CPU with bf16 "
                                                "instructions).")] = "fp32",
    calib: Annotated[Path | None, typer.Option(help="Folder of face images for INT8 calibration and the "
                                                    "parity check (default: built-in face crops).")] = None,
    batch: Annotated[str, typer.Option(help="Batch size N, or 'dynamic'.")] = "dynamic",
    max_batch: Annotated[int, typer.Option(min=1, help="Largest batch of a dynamic TensorRT profile.")] = 256,
    contexts: Annotated[int, typer.Option(help="TensorRT: calls that may run at once (threads sharing one "
                                               "engine); the engine holds that many copies of its profile, as "
                                               "TensorRT gives each concurrent context its own (1..8).")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("models"),
    name: Annotated[str | None, typer.Option(help="Base name of the files (default: the model's name, or the "
                                                  "run folder's for RUN/model.safetensors).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Export a model; every artifact is checked against PyTorch before it is written."""
    with needs_extra("train", "edgefer convert"):
        from edgefer.convert.pipeline import ConvertRequest, parse_formats
        from edgefer.convert.pipeline import convert as run_convert

    request = ConvertRequest(model=model, formats=parse_formats(to), precision=precision.lower(), out=out,
                             calib=calib, batch=_parse_batch(batch), max_batch=max_batch, name=name,
                             contexts=contexts)
    artifacts = run_convert(request, progress=lambda line: typer.echo(line, err=True))
    if as_json:
        typer.echo(json_text([a.to_dict() for a in artifacts], indent=2))
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
