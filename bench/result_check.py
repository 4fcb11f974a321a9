"""A bench result file read as untrusted input: bounded, parsed strictly and checked field by field.

`edgefer report` merges files from other machines, which anyone can write. Before a Machine or a
Record is built from one, the file must be under ``MAX_RESULT_BYTES`` (checked before it is read), be
strict JSON (no NaN or Infinity, no number of more than 30 digits, nesting at most ``MAX_DEPTH``
deep), and every field the records and the machine use must have its type (an int where an int is
due, a finite number of at most 1e15 where a float is, text of at most ``MAX_TEXT`` characters).
Anything else is an InputError naming the file and the field (``records[3].batch``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path

from edgefer.errors import InputError

MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32
MAX_TEXT = 10_000
MAX_NUMBER = 1e15
_MAX_DIGITS = 30


def load_result_json(path: Path) -> object:
    """The JSON of a result file, refused (InputError naming the file) when too large or not strict JSON."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such result file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if size > MAX_RESULT_BYTES:
        raise InputError(f"{path}: {size:,}-byte result file exceeds the limit of {MAX_RESULT_BYTES:,} bytes")
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise InputError(f"{path}: not a readable bench result (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: not a readable bench result ({err})") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise ValueError(f"a {len(text)}-digit number")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 2 * _MAX_DIGITS:
        raise ValueError(f"a {len(text)}-character number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def check_fields(path: Path, data: object, cls: type, where: str, skip: tuple[str, ...] = ()) -> None:
    """``data`` holds every field of the dataclass ``cls`` that has no default, and each field it holds
    has that field's type (keys ``cls`` does not know are ignored, as readers of schema 1 do)."""
    if not isinstance(data, dict):
        raise _wrong(path, where, "an object", data)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        if field.name in data:
            check_value(path, data[field.name], hints[field.name], f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise InputError(f"{path}: field {where}.{field.name} is missing")


@dataclasses.dataclass
class LatencyFields:
    """A record's ``latency_ms``, milliseconds per call."""

    median: float
    mean: float
    p90: float | None = None
    p99: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    cv: float | None = None


@dataclasses.dataclass
class RunFields:
    """A record's ``run``: how the timing was taken."""

    iterations: int
    seconds: float
    valid: bool
    warmup_iterations: int = 0
    warmup_seconds: float = 0.0
    invalid_reason: str = ""


def check_value(path: Path, value: object, hint: object, where: str, depth: int = 0) -> None:
    """``value`` against a type hint of the result classes (str, int, float, bool, None, unions, list[...],
    dict[str, ...], object, dataclasses)."""
    if depth > MAX_DEPTH:
        raise InputError(f"{path}: field {where}: nested deeper than {MAX_DEPTH} levels")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                check_value(path, value, option, where, depth)
                return
            except InputError as err:
                errors.append(err)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        check_fields(path, value, hint, where)
    elif origin is list:
        if not isinstance(value, list):
            raise _wrong(path, where, "a list", value)
        for index, item in enumerate(value):
            check_value(path, item, args[0] if args else object, f"{where}[{index}]", depth + 1)
    elif origin is dict:
        if not isinstance(value, dict):
            raise _wrong(path, where, "an object", value)
        for key, item in value.items():
            _check_text(path, key, f"{where} key")
            check_value(path, item, args[1] if args else object, f"{where}.{key}", depth + 1)
    elif hint is object or hint is typing.Any:
        _check_any(path, value, where, depth)
    else:
        _check_scalar(path, value, hint, where)


def _check_scalar(path: Path, value: object, hint: object, where: str) -> None:
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong(path, where, "true or false", value)
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, where, "a whole number", value)
        _check_size(path, value, where)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(path, where, "a number", value)
        _check_size(path, value, where)
    elif hint is str:
        _check_text(path, value, where)
    elif hint is type(None):
        if value is not None:
            raise _wrong(path, where, "null", value)


def _check_any(path: Path, value: object, where: str, depth: int) -> None:
    if isinstance(value, dict):
        check_value(path, value, dict[str, object], where, depth)
    elif isinstance(value, list):
        check_value(path, value, list[object], where, depth)
    elif isinstance(value, str):
        _check_text(path, value, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_size(path, value, where)


def _check_text(path: Path, value: object, where: str) -> None:
    if not isinstance(value, str):
        raise _wrong(path, where, "text", value)
    if len(value) > MAX_TEXT:
        raise InputError(f"{path}: field {where}: {len(value):,} characters of text, over the limit of {MAX_TEXT:,}")


def _check_size(path: Path, value: float, where: str) -> None:
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise InputError(f"{path}: field {where}: {value:.3g} is out of range (at most {MAX_NUMBER:g} in size)")


def _wrong(path: Path, where: str, expected: str, value: object) -> InputError:
    found = "null" if value is None else type(value).__name__
    return InputError(f"{path}: field {where}: expected {expected}, got {found}")
