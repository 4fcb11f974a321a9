"""What a model file says about itself, read without any runtime: its kind and its edgefer spec.

The spec sits in an ONNX file's ``metadata_props``, an OpenVINO IR's ``rt_info`` (edgefer/spec), a
TensorRT plan's JSON sidecar, or a PyTorch weights file's safetensors header. Tools that plan work on
files (``edgefer bench --models FILE``) read it here; the backends read it again, with the file's full
checks, when they load it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.etree import ElementTree

from edgefer.errors import ModelError
from edgefer.spec import METADATA_KEY, ModelSpec

#: artifact suffix -> its format (the name `edgefer convert --to` uses)
FORMATS_BY_SUFFIX = {".onnx": "onnx", ".xml": "openvino", ".engine": "tensorrt", ".plan": "tensorrt",
                     ".safetensors": "safetensors"}

#: The safetensors header key naming the network (edgefer.train.models.weights writes it).
SAFETENSORS_MODEL_KEY = "edgefer.model"


def artifact_format(path: str | os.PathLike) -> str | None:
    """"onnx", "openvino", "tensorrt" or "safetensors" for an artifact file name, None for anything else."""
    return FORMATS_BY_SUFFIX.get(Path(path).suffix.lower())


def artifact_files(path: str | os.PathLike) -> list[Path]:
    """The files an artifact is made of: an IR's .xml and .bin, a plan and its sidecar, or the one file."""
    path = Path(path)
    extra = {"openvino": [path.with_suffix(".bin")], "tensorrt": [path.with_name(path.name + ".json")]}
    return [path, *[p for p in extra.get(artifact_format(path) or "", []) if p.is_file()]]


def read_spec(path: str | os.PathLike) -> ModelSpec:
    """The edgefer spec of an artifact file; ModelError naming the file when it has none or is not one."""
    path = Path(path)
    fmt = artifact_format(path)
    if fmt is None:
        raise ModelError(f"{path}: not a model artifact, expected one of {', '.join(FORMATS_BY_SUFFIX)}")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        text = {"onnx": _onnx_spec, "openvino": _ir_spec, "tensorrt": _sidecar_spec,
                "safetensors": _safetensors_spec}[fmt](path)
    except (OSError, ValueError, ElementTree.ParseError) as err:
        raise ModelError(f"{path}: unreadable {fmt} file ({err})") from None
    return spec_from_text(path, text)


def spec_from_text(path: Path, text: str | None) -> ModelSpec:
    """The spec in ``text`` (the metadata read from ``path``); ModelError naming the file when it is
    missing or broken."""
    if not text:
        raise ModelError(f"{path}: no edgefer metadata in the file; export it with 'edgefer convert'")
    try:
        return ModelSpec.from_json(text)
    except (ValueError, TypeError) as err:
        raise ModelError(f"{path}: broken edgefer metadata ({err})") from None


def _onnx_spec(path: Path) -> str | None:
    from edgefer.trust import check_onnx_file, onnx_metadata

    return onnx_metadata(check_onnx_file(path)).get(METADATA_KEY)


def _safetensors_spec(path: Path) -> str | None:
    """The spec in the header's metadata; a file with only the network's name gets that network's defaults
    (as the torch backend loads it)."""
    from edgefer.trust import safetensors_metadata

    metadata = safetensors_metadata(path)
    if METADATA_KEY in metadata:
        return metadata[METADATA_KEY]
    name = metadata.get(SAFETENSORS_MODEL_KEY)
    return ModelSpec(model=name).to_json() if name else None


def _ir_spec(path: Path) -> str | None:
    """``<rt_info><edgefer><spec value="..."/>``, found by streaming the XML (an IR can be megabytes)."""
    inside: list[str] = []
    for event, element in ElementTree.iterparse(path, events=("start", "end")):
        if event == "start":
            inside.append(element.tag)
            if inside[-3:] == ["rt_info", "edgefer", "spec"]:
                return element.get("value")
        else:
            inside.pop()
            element.clear()
    return None


def _sidecar_spec(path: Path) -> str | None:
    """The spec in the plan's sidecar, read with the TensorRT backend's own checks (no TensorRT needed)."""
    from edgefer.runtime.tensorrt_backend import read_sidecar

    spec = read_sidecar(path)["spec"]
    return json.dumps(spec) if spec else None
