"""Checks on untrusted model files, made by edgefer itself before any runtime or parser reads them.

No runtime is trusted to validate what it loads (ONNX Runtime only recently stopped following
``external_data`` paths out of a model's folder; safetensors does not check values or caps only the
header; a TensorRT plan is executable code). So edgefer walks the bytes itself, without ``onnx`` or
``torch`` (the device runtime depends on neither):

- ONNX: every length-delimited field of the protobuf must fit in the file (a truncated or garbage
  file is refused), and every ``external_data`` location must name a regular file inside the
  model's own folder (no absolute path, no ``..``, no symlink leading out, no hard link: a file
  with more than one link is refused, as its other name may lie anywhere);
- OpenVINO IR: the ``.bin`` beside the ``.xml`` follows the same rule (``check_beside``);
- safetensors: the header is bounded, parsed and checked (dtypes, shapes, offsets contiguous from 0
  to the end of the file) before the safetensors library maps the file;
- TensorRT plans: their sha256 must match the one ``edgefer convert`` wrote in the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path

from edgefer.errors import ModelError, UnsafeModelError

# --- ONNX ------------------------------------------------------------------------------------------

#: Sub-messages that can hold a TensorProto, by (message, field number) -> sub-message kind.
#: Fields not listed are length-checked and skipped. Numbers are from onnx/onnx.proto3.
_ONNX_FIELDS = {
    ("model", 7): "graph", ("model", 20): "training", ("model", 25): "function",
    ("training", 1): "graph", ("training", 2): "graph",
    ("function", 7): "node",
    ("graph", 1): "node", ("graph", 5): "tensor", ("graph", 15): "sparse",
    ("node", 5): "attribute",
    ("attribute", 5): "tensor", ("attribute", 6): "graph", ("attribute", 10): "tensor",
    ("attribute", 11): "graph", ("attribute", 22): "sparse", ("attribute", 23): "sparse",
    ("sparse", 1): "tensor", ("sparse", 2): "tensor",
    ("tensor", 13): "entry",
}
_MAX_DEPTH = 64
_ONNX_GRAPH_FIELD = 7


def check_onnx_file(path: str | os.PathLike) -> Path:
    """Refuse a truncated/garbage ONNX file (ModelError) or one whose external data leaves its folder
    (UnsafeModelError), before a runtime parses it."""
    path = Path(path)
    data = memoryview(path.read_bytes())
    locations: list[bytes] = []
    try:
        fields = _walk(data, "model", locations, 0)
    except ValueError as err:
        raise ModelError(f"{path}: invalid/truncated ONNX protobuf ({err})") from None
    if _ONNX_GRAPH_FIELD not in fields:
        raise ModelError(f"{path}: invalid/truncated ONNX protobuf (no graph)")
    for location in locations:
        check_external_location(path, location)
    return path


_ONNX_METADATA_FIELD = 14


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """An ONNX file's ``metadata_props`` (key -> value), read from the bytes without the onnx package;
    for runtimes that do not expose them (OpenVINO's ONNX reader). Call after :func:`check_onnx_file`."""
    data = memoryview(Path(path).read_bytes())
    found: dict[str, str] = {}
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            wire = key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            elif wire == 2:
                length, pos = _varint(data, pos)
                if key >> 3 == _ONNX_METADATA_FIELD:
                    entry = _walk(data[pos:pos + length], "metadata", [], 0)
                    found[bytes(entry.get(1, b"")).decode()] = bytes(entry.get(2, b"")).decode()
                pos += length
            else:
                raise ValueError(f"unsupported wire type {wire} at byte {pos}")
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: unreadable ONNX metadata ({err})") from None
    return found


def _walk(data: memoryview, kind: str, locations: list[bytes], depth: int) -> dict[int, object]:
    """Check that ``data`` parses as a protobuf message, collecting external-data locations; its last
    value of each field number (bytes for length-delimited fields)."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"nested deeper than {_MAX_DEPTH} messages")
    fields: dict[int, object] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 5):
            value, pos = None, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire} at byte {pos}")
        if pos > len(data):
            raise ValueError("a field runs past the end of the data")
        fields[number] = value
        child = _ONNX_FIELDS.get((kind, number))
        if child and wire == 2:
            found = _walk(value, child, locations, depth + 1)
            if child == "entry" and bytes(found.get(1, b"")) == b"location":
                locations.append(bytes(found.get(2, b"")))
    return fields


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("the data ends inside a number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise ValueError(f"a number longer than 10 bytes at byte {pos}")


def check_external_location(model: Path, location: bytes) -> Path:
    """The external-data file ``location`` names, refused unless it is a regular file inside the model's folder."""
    try:
        text = location.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeModelError(f"{model}: external data location {location!r} is not UTF-8 text") from None
    parts = text.replace("\\", "/").split("/")
    refused = (not text or "\0" in text or text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":")
               or ".." in parts)
    folder = Path(os.path.realpath(model.absolute().parent))  # runtimes resolve locations from here
    target = model.absolute().parent / text
    if not refused:
        real = Path(os.path.realpath(target))
        refused = real != folder and folder not in real.parents
    if refused:
        raise UnsafeModelError(f"{model}: external data location {text!r} points outside the model's folder; "
                               "refused (edgefer only reads tensor data stored beside the model)")
    return check_single_file(model, target, f"external data file {text!r}")


def check_beside(model: Path, companion: Path, what: str) -> Path:
    """``companion`` (an IR's .bin), refused unless it resolves inside ``model``'s folder and is a regular file
    with one link: the rule external data follows."""
    folder = Path(os.path.realpath(model.absolute().parent))
    real = Path(os.path.realpath(companion.absolute()))
    if real != folder and folder not in real.parents:
        raise UnsafeModelError(f"{model}: {what} resolves to {real}, outside the model's folder; refused (edgefer "
                               "only reads weights stored beside the model)")
    return check_single_file(model, companion, what)


def check_single_file(model: Path, target: Path, what: str) -> Path:
    """``target`` if it is a regular file with a single link. A hard link is refused like a symlink: from inside
    the folder it cannot be told apart from the file outside it that it shares (device and inode)."""
    try:
        info = os.stat(target)
    except OSError:
        raise ModelError(f"{model}: {what} is missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeModelError(f"{model}: {what} is not a regular file; refused")
    if info.st_nlink > 1:
        raise UnsafeModelError(f"{model}: {what} is a hard link ({info.st_nlink} names for one file), which may "
                               "lead outside the model's folder; refused: copy the file instead")
    return target


# --- safetensors -----------------------------------------------------------------------------------

#: The safetensors library's own cap on the JSON header (MAX_HEADER_SIZE in safetensors/src/tensor.rs).
MAX_SAFETENSORS_HEADER = 100_000_000
_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
               "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64,
               "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


def check_safetensors_file(path: str | os.PathLike) -> dict[str, dict]:
    """The tensors' header entries, after checking the header the way safetensors does and more.

    Refuses (ModelError) a header over 100 MB or past the end of the file, invalid JSON, duplicate
    keys, unknown dtypes, and tensors whose byte ranges overlap, leave holes or do not end at the end
    of the file: before anything maps or allocates from the header's numbers.
    """
    return _checked_header(Path(path))[0]


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header's ``__metadata__`` (string to string) of a file :func:`check_safetensors_file` accepts."""
    return _checked_header(Path(path))[1]


def _checked_header(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The header's tensor entries and its ``__metadata__``, read once and checked as
    :func:`check_safetensors_file` says."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ModelError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        length = int.from_bytes(prefix, "little")
        if length > MAX_SAFETENSORS_HEADER:
            raise ModelError(f"{path}: safetensors header of {length} bytes, over the "
                             f"{MAX_SAFETENSORS_HEADER}-byte limit (not a safetensors file, or a hostile one)")
        if length > size - 8:
            raise ModelError(f"{path}: truncated safetensors file (header of {length} bytes, file of {size})")
        header = _parse_header(path, handle.read(length))
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    _check_offsets(path, tensors, size - 8 - length)
    return tensors, header.get("__metadata__", {})


def _parse_header(path: Path, raw: bytes) -> dict:
    def no_duplicates(pairs):
        keys = [key for key, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
        return dict(pairs)

    if not raw.startswith(b"{"):
        raise ModelError(f"{path}: not a safetensors file (its header is not a JSON object)")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"{path}: broken safetensors header ({err})") from None
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelError(f"{path}: safetensors __metadata__ must map strings to strings")
    return header


def _check_offsets(path: Path, tensors: dict, data_size: int) -> None:
    spans = []
    for name, entry in tensors.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelError(f"{path}: tensor {name!r}: header entry must hold dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPE_BITS:
            raise ModelError(f"{path}: tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ModelError(f"{path}: tensor {name!r}: shape {shape!r} is not a list of sizes")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise ModelError(f"{path}: tensor {name!r}: data_offsets {offsets!r} are not [begin, end]")
        expected = math.prod(shape) * _DTYPE_BITS[dtype]
        if expected != (offsets[1] - offsets[0]) * 8:
            raise ModelError(f"{path}: tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape} "
                             f"of {dtype}")
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            problem = "overlaps the tensor before it" if begin < end else f"leaves a hole at byte {end}"
            raise ModelError(f"{path}: tensor {name!r}: data {problem} (overlapping or missing tensor data)")
        end = stop
    if end != data_size:
        raise ModelError(f"{path}: tensors cover {end} bytes of data, the file holds {data_size} "
                         "(truncated, or trailing bytes no tensor accounts for)")


# --- TensorRT plans --------------------------------------------------------------------------------

def read_verified_plan(path: str | os.PathLike, expected_sha256: str, manifest: str) -> bytes:
    """The plan's bytes, only if their sha256 is the one recorded in ``manifest`` (the sidecar) at build time.

    A TensorRT plan is executable code, and TensorRT's own validity check is no tamper check: a plan
    that is not byte for byte the one edgefer built is refused (UnsafeModelError) before TensorRT
    sees it.
    """
    plan = Path(path).read_bytes()
    if hashlib.sha256(plan).hexdigest() != str(expected_sha256).lower():
        raise UnsafeModelError(f"{path}: the plan does not match the sha256 in {manifest} (changed, truncated or "
                               "not built by edgefer convert); refused: a TensorRT plan is executable code")
    return plan
